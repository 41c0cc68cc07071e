"""std::mt19937_64 and libstdc++'s uniform_real / normal distributions, bit for bit.

The C++ models draw their initial parameters from these generators (seeded by model.seed), so
reproducing them lets the PyTorch baseline start from exactly the theta that kwm starts from.
"""

import math

_MASK = (1 << 64) - 1
_N, _M = 312, 156
_MATRIX_A = 0xB5026F5AA96619E9
_UPPER, _LOWER = 0xFFFFFFFF80000000, 0x7FFFFFFF
_TWO_POW_64 = float(1 << 64)


class Mt19937_64:
    """The 64-bit Mersenne Twister with std::mt19937_64's parameters and seeding."""

    def __init__(self, seed):
        self._state = [seed & _MASK]
        for i in range(1, _N):
            prev = self._state[-1]
            self._state.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & _MASK)
        self._index = _N

    def _twist(self):
        s = self._state
        for i in range(_N):
            x = (s[i] & _UPPER) | (s[(i + 1) % _N] & _LOWER)
            s[i] = s[(i + _M) % _N] ^ (x >> 1) ^ (_MATRIX_A if x & 1 else 0)
        self._index = 0

    def __call__(self):
        if self._index >= _N:
            self._twist()
        x = self._state[self._index]
        self._index += 1
        x ^= (x >> 29) & 0x5555555555555555
        x ^= (x << 17) & 0x71D67FFFEDA60000
        x ^= (x << 37) & 0xFFF7EEE000000000
        x ^= x >> 43
        return x & _MASK


def generate_canonical(rng):
    """libstdc++ generate_canonical<double, 53> for a 64-bit engine: one draw / 2^64."""
    value = float(rng()) / _TWO_POW_64
    return value if value < 1.0 else math.nextafter(1.0, 0.0)


class UniformReal:
    """std::uniform_real_distribution<double>(a, b)."""

    def __init__(self, a=0.0, b=1.0):
        self.a, self.b = a, b

    def __call__(self, rng):
        return generate_canonical(rng) * (self.b - self.a) + self.a


class Normal:
    """std::normal_distribution<double>(mean, sd): libstdc++'s Marsaglia polar method, which
    caches the second value of each pair (so each C++ distribution object is one instance)."""

    def __init__(self, mean=0.0, sd=1.0):
        self.mean, self.sd = mean, sd
        self._saved = None

    def __call__(self, rng):
        if self._saved is not None:
            value, self._saved = self._saved, None
        else:
            while True:
                x = 2.0 * generate_canonical(rng) - 1.0
                y = 2.0 * generate_canonical(rng) - 1.0
                r2 = x * x + y * y
                if r2 <= 1.0 and r2 != 0.0:
                    break
            mult = math.sqrt(-2.0 * math.log(r2) / r2)
            self._saved = x * mult
            value = y * mult
        return value * self.sd + self.mean
