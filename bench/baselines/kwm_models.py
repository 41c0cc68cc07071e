"""PyTorch twins of core/models: the deep diagonal recurrent stack and the innovation-form SSM.

Same function, same flat parameter vector theta (group order and row-major units as in
core/models/diagonal_stack.hpp and innovation_ssm.hpp), the same initial theta (the C++
generators are reproduced in cpp_random.py), and model.yaml files load directly. Everything runs
in float64 on normalised data; the sequential recurrences are written as loops over time so that
autograd gives truncated BPTT over a window.
"""

import base64
import math

import numpy as np
import torch

from cpp_random import Mt19937_64, Normal, UniformReal

DTYPE = torch.float64
DEFAULT_STABILITY_MARGIN = 1e-3  # kDefaultStabilityMargin in core/models/sequence_model.hpp


def _int(config, key, default):
    return int(config.get(key, default))


def _float(config, key, default):
    return float(config.get(key, default))


def _bool(config, key, default):
    value = config.get(key, default)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return bool(value)


class SequenceModel(torch.nn.Module):
    """Shared parts: sizes, the flat theta, input assembly v_t = [u_t; y_{t-1}; ...; y_{t-p}]."""

    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        self.n_in = _int(config, "n_in", 0)
        self.n_out = _int(config, "n_out", 1)
        self.output_lags = _int(config, "output_lags", 0)
        self.n_v = self.n_in + self.n_out * self.output_lags

    def set_theta(self, theta):
        theta = np.array(theta, dtype=np.float64)  # a writable copy
        if theta.shape != (self.parameter_count(),):
            raise ValueError(f"theta needs {self.parameter_count()} entries; got {theta.size}")
        with torch.no_grad():
            self.theta.copy_(torch.from_numpy(theta))

    def model_inputs(self, u_norm, y_norm):
        """v (T x n_v) from normalised inputs (T x n_in) and observations (T x n_out).

        Missing entries (NaN) enter as 0, the channel mean, exactly as the C++ models do; lags
        before t = 0 are 0. Lag k (1-based) occupies columns [n_in + (k-1) m, n_in + k m).
        """
        steps = y_norm.shape[0]
        v = np.zeros((steps, self.n_v))
        if self.n_in:
            v[:, : self.n_in] = np.nan_to_num(u_norm, nan=0.0)
        y_filled = np.nan_to_num(y_norm, nan=0.0)
        for k in range(1, self.output_lags + 1):
            cols = slice(self.n_in + (k - 1) * self.n_out, self.n_in + k * self.n_out)
            v[k:, cols] = y_filled[: steps - k]
        return torch.from_numpy(v)


class DiagonalStack(SequenceModel):
    """z_0 = W_in [v; 1]; per layer h = lam h + B z, y = Re(C h) + D z, z += mixer(y);
    yhat = W_out [z_L; 1], lam = exp(-exp(nu) + i theta)."""

    def __init__(self, config):
        super().__init__(config)
        self.width = _int(config, "width", 16)
        self.states = _int(config, "states", 16)
        self.layers = _int(config, "layers", 2)
        self.mixer = str(config.get("mixer", "glu"))
        if self.mixer not in ("none", "glu", "mlp"):
            raise ValueError(f"mixer must be one of none, glu, mlp; got '{self.mixer}'")
        hidden = _int(config, "mixer_hidden", 0)
        self.hidden = hidden if hidden > 0 else self.width
        self.min_radius = _float(config, "min_radius", 0.9)
        self.max_radius = _float(config, "max_radius", 0.999)
        self.max_phase = _float(config, "max_phase", math.pi)
        self.seed = _int(config, "seed", 1)
        self.theta = torch.nn.Parameter(torch.from_numpy(self.initial_theta()))

    # ---- layout -----------------------------------------------------------------------------
    def mixer_size(self):
        h, hm = self.width, self.hidden
        return {"none": 0, "glu": h * (2 * h + 2), "mlp": hm * (h + 1) + h * (hm + 1)}[self.mixer]

    def layer_size(self):
        return self.states * (4 * self.width + 2) + self.width

    def offsets(self):
        """Start of each group: input, then per layer (recurrence, skip, mixer), then readout."""
        h = self.width
        offset = h * (self.n_v + 1)
        layers = []
        for _ in range(self.layers):
            recurrence = offset
            skip = recurrence + self.states * (4 * h + 2)
            mixer = skip + h
            layers.append((recurrence, skip, mixer))
            offset = mixer + self.mixer_size()
        return layers, offset

    def parameter_count(self):
        return self.offsets()[1] + self.n_out * (self.width + 1)

    # ---- initialisation (DiagonalStack::DiagonalStack, DiagonalLayer/ChannelMixer::initialise)
    def initial_theta(self):
        h, n = self.width, self.states
        theta = np.zeros(self.parameter_count())
        rng = Mt19937_64(self.seed)
        normal = Normal()
        in_sd = 1.0 / math.sqrt(max(1, self.n_v))
        for i in range(h):
            for j in range(self.n_v):
                theta[i * (self.n_v + 1) + j] = in_sd * normal(rng)
        layer_offsets, readout = self.offsets()
        for recurrence, skip, mixer in layer_offsets:
            uniform, layer_normal = UniformReal(), Normal()
            unit = 4 * h + 2
            c_sd = 1.0 / math.sqrt(n)
            r_min2, r_max2 = self.min_radius**2, self.max_radius**2
            for s in range(n):
                base = recurrence + s * unit
                r2 = r_min2 + uniform(rng) * (r_max2 - r_min2)
                theta[base] = math.log(-math.log(math.sqrt(r2)))
                theta[base + 1] = self.max_phase * uniform(rng)
                b_sd = math.sqrt((1.0 - r2) / (2.0 * h))
                for j in range(2 * h):
                    theta[base + 2 + j] = b_sd * layer_normal(rng)
                for j in range(2 * h):
                    theta[base + 2 + 2 * h + j] = c_sd * layer_normal(rng)
            for i in range(h):
                theta[skip + i] = layer_normal(rng)
            self._initialise_mixer(theta, mixer, rng)
        out_sd = 1.0 / math.sqrt(h)
        for i in range(self.n_out):
            for j in range(h):
                theta[readout + i * (h + 1) + j] = out_sd * normal(rng)
        return theta

    def _initialise_mixer(self, theta, offset, rng):
        normal = Normal()
        h, hm = self.width, self.hidden
        if self.mixer == "glu":
            sd = 1.0 / math.sqrt(h)
            for i in range(h):
                unit = offset + i * (2 * h + 2)
                for j in range(h):
                    theta[unit + j] = sd * normal(rng)
                for j in range(h):
                    theta[unit + h + 1 + j] = sd * normal(rng)
        elif self.mixer == "mlp":
            for start, units, fan_in in ((offset, hm, h), (offset + hm * (h + 1), h, hm)):
                sd = 1.0 / math.sqrt(fan_in)
                for u in range(units):
                    for j in range(fan_in):
                        theta[start + u * (fan_in + 1) + j] = sd * normal(rng)

    # ---- forward ------------------------------------------------------------------------------
    def zero_state(self, batch):
        zeros = torch.zeros(batch, self.states, dtype=DTYPE)
        return [(zeros, zeros) for _ in range(self.layers)]

    def _mix(self, y, offset):
        h, hm, theta = self.width, self.hidden, self.theta
        if self.mixer == "none":
            return y
        if self.mixer == "glu":
            units = theta[offset : offset + h * (2 * h + 2)].view(h, 2 * h + 2)
            linear = y @ units[:, :h].T + units[:, h]
            gate = torch.sigmoid(y @ units[:, h + 1 : 2 * h + 1].T + units[:, 2 * h + 1])
            return linear * gate
        w_in = theta[offset : offset + hm * (h + 1)].view(hm, h + 1)
        w_out = theta[offset + hm * (h + 1) : offset + self.mixer_size()].view(h, hm + 1)
        q = y @ w_in[:, :h].T + w_in[:, h]
        gelu = 0.5 * q * (1.0 + torch.erf(q / math.sqrt(2.0)))  # exact erf GELU
        return gelu @ w_out[:, :hm].T + w_out[:, hm]

    def forward(self, v, y_norm, state):
        """v: B x k x n_v inputs; y_norm unused (output-error model). Returns yhat (B x k x
        n_out, normalised) and the state after the window."""
        del y_norm
        h, n, theta = self.width, self.states, self.theta
        steps = v.shape[1]
        w_in = theta[: h * (self.n_v + 1)].view(h, self.n_v + 1)
        z = v @ w_in[:, : self.n_v].T + w_in[:, self.n_v]
        layer_offsets, readout = self.offsets()
        new_state = []
        for (recurrence, skip, mixer), (h_re, h_im) in zip(layer_offsets, state):
            units = theta[recurrence:skip].view(n, 4 * h + 2)
            modulus = torch.exp(-torch.exp(units[:, 0]))
            lam_re, lam_im = modulus * torch.cos(units[:, 1]), modulus * torch.sin(units[:, 1])
            b_re, b_im = units[:, 2 : 2 + h], units[:, 2 + h : 2 + 2 * h]
            c_re, c_im = units[:, 2 + 2 * h : 2 + 3 * h].T, units[:, 2 + 3 * h :].T
            bz_re, bz_im = z @ b_re.T, z @ b_im.T
            seq_re, seq_im = [], []
            for t in range(steps):
                h_re, h_im = (
                    lam_re * h_re - lam_im * h_im + bz_re[:, t],
                    lam_re * h_im + lam_im * h_re + bz_im[:, t],
                )
                seq_re.append(h_re)
                seq_im.append(h_im)
            new_state.append((h_re, h_im))
            y = (
                torch.stack(seq_re, 1) @ c_re.T
                - torch.stack(seq_im, 1) @ c_im.T
                + theta[skip:mixer] * z
            )
            z = z + self._mix(y, mixer)
        w_out = theta[readout:].view(self.n_out, h + 1)
        return z @ w_out[:, :h].T + w_out[:, h], new_state

    def project_to_stable(self, margin=DEFAULT_STABILITY_MARGIN):
        """|lam| <= 1 - margin: raise nu to log(-log(1 - margin)) (DiagonalLayer::project)."""
        nu_floor = math.log(-math.log(1.0 - margin))
        unit = 4 * self.width + 2
        with torch.no_grad():
            for recurrence, _, _ in self.offsets()[0]:
                nu = self.theta[recurrence : recurrence + self.states * unit : unit]
                nu.clamp_(min=nu_floor)


class InnovationSsm(SequenceModel):
    """yhat = C x + D v, e = y - yhat (0 where missing), x' = A x + B v + K e."""

    def __init__(self, config):
        super().__init__(config)
        self.states = _int(config, "states", 2)
        self.feedthrough = _bool(config, "feedthrough", True)
        self.innovation_gain = _bool(config, "innovation_gain", True)
        self.initial_radius = _float(config, "initial_radius", 0.5)
        self.seed = _int(config, "seed", 1)
        self.theta = torch.nn.Parameter(torch.from_numpy(self.initial_theta()))

    def readout_cols(self):
        return self.states + (self.n_v if self.feedthrough else 0)

    def offsets(self):
        nx, nv, ny = self.states, self.n_v, self.n_out
        a = 0
        b = a + nx * nx
        k = b + nx * nv
        readout = k + (nx * ny if self.innovation_gain else 0)
        return a, b, k, readout

    def parameter_count(self):
        return self.offsets()[3] + self.n_out * self.readout_cols()

    def initial_theta(self):
        nx, nv, ny = self.states, self.n_v, self.n_out
        rng, normal = Mt19937_64(self.seed), Normal()

        def random(rows, cols, sd):
            # Eigen fills m(i) in column-major order.
            values = [sd * normal(rng) for _ in range(rows * cols)]
            return np.array(values).reshape(cols, rows).T

        off_a, off_b, _, off_r = self.offsets()
        theta = np.zeros(self.parameter_count())
        a = random(nx, nx, 1.0)
        radius = _spectral_radius(a)
        a *= self.initial_radius / radius if radius > 0 else 0.0
        theta[off_a : off_a + nx * nx] = a.reshape(-1)
        theta[off_b : off_b + nx * nv] = random(nx, nv, 1.0 / math.sqrt(max(1, nv))).reshape(-1)
        # As the C++ constructor does: C is written as an n_out x n_x row-major block at the
        # start of the readout group, whose rows are n_x + n_v long. With feedthrough and
        # n_out >= 2 the rows of C after the first land in D's slots (reported to the lead).
        theta[off_r : off_r + ny * nx] = random(ny, nx, 1.0 / math.sqrt(nx)).reshape(-1)
        return theta

    def matrices(self):
        nx, nv, ny, theta = self.states, self.n_v, self.n_out, self.theta
        off_a, off_b, off_k, off_r = self.offsets()
        a = theta[off_a:off_b].view(nx, nx)
        b = theta[off_b:off_k].view(nx, nv)
        k = theta[off_k:off_r].view(nx, ny) if self.innovation_gain else None
        readout = theta[off_r:].view(ny, self.readout_cols())
        c = readout[:, :nx]
        d = readout[:, nx:] if self.feedthrough else None
        return a, b, k, c, d

    def zero_state(self, batch):
        return torch.zeros(batch, self.states, dtype=DTYPE)

    def forward(self, v, y_norm, state):
        """v: B x k x n_v, y_norm: B x k x n_out (NaN = missing). Returns yhat, state."""
        a, b, k, c, d = self.matrices()
        x = state
        bv = v @ b.T
        direct = v @ d.T if d is not None else None
        observed = ~torch.isnan(y_norm)
        y_filled = torch.where(observed, y_norm, torch.zeros_like(y_norm))
        outputs = []
        for t in range(v.shape[1]):
            yhat = x @ c.T
            if direct is not None:
                yhat = yhat + direct[:, t]
            outputs.append(yhat)
            x_next = x @ a.T + bv[:, t]
            if k is not None:
                e = torch.where(observed[:, t], y_filled[:, t] - yhat, torch.zeros_like(yhat))
                x_next = x_next + e @ k.T
            x = x_next
        return torch.stack(outputs, 1), x

    def project_to_stable(self, margin=DEFAULT_STABILITY_MARGIN):
        """InnovationSsm::project: scale A into radius 1 - margin, then shrink K by bisection
        until A - s K C is stable too."""
        bound = 1.0 - margin
        target = bound * (1.0 - 1e-9)
        nx, ny = self.states, self.n_out
        off_a, _, off_k, _ = self.offsets()
        with torch.no_grad():
            a_view = self.theta[off_a : off_a + nx * nx].view(nx, nx)
            a = a_view.numpy().copy()
            radius = _spectral_radius(a)
            if radius > bound:
                a *= target / radius
                a_view.copy_(torch.from_numpy(a))
            if not self.innovation_gain:
                return
            k_view = self.theta[off_k : off_k + nx * ny].view(nx, ny)
            kc = k_view.numpy() @ self.matrices()[3].detach().numpy()
            if _spectral_radius(a - kc) <= bound:
                return
            stable, unstable = 0.0, 1.0
            for _ in range(60):
                mid = 0.5 * (stable + unstable)
                if _spectral_radius(a - mid * kc) <= target:
                    stable = mid
                else:
                    unstable = mid
            k_view.mul_(stable)


def _spectral_radius(matrix):
    return float(np.max(np.abs(np.linalg.eigvals(matrix)))) if matrix.size else 0.0


def make_model(config):
    """A model from a run config's `model:` section (n_in and n_out filled in)."""
    kind = config.get("type")
    if kind == "diagonal_stack":
        return DiagonalStack(config)
    if kind == "innovation_ssm":
        return InnovationSsm(config)
    raise ValueError(f"model.type must be diagonal_stack or innovation_ssm; got '{kind}'")


def load_model_file(path, yaml_module):
    """(model, normalisation dict) from a model.yaml written by kwm (core/models/model_io)."""
    with open(path, encoding="utf-8") as f:
        doc = yaml_module.safe_load(f)
    if not isinstance(doc, dict) or doc.get("format") != "kwm-model":
        raise ValueError(f"{path}: not a kwm-model file")
    model = make_model(doc["model"])
    encoded = doc["theta"]
    theta = np.frombuffer(base64.b64decode(encoded["data"]), dtype="<f8")
    if theta.size != int(encoded["size"]):
        raise ValueError(f"{path}: theta.size says {encoded['size']}, data holds {theta.size}")
    model.set_theta(theta)
    norm = {key: np.array([float(x) for x in doc["normalization"][key] or []])
            for key in ("input_mean", "input_scale", "output_mean", "output_scale")}
    return model, norm


def predict_series(model, v, y_norm, state=None, chunk=1024):
    """One-step predictions (normalised) over a whole series with frozen parameters, from the
    zero state (model.reset()) unless `state` is given: T x n_out numpy, and the final state."""
    if state is None:
        state = model.zero_state(1)
    y_norm = torch.as_tensor(y_norm, dtype=DTYPE)
    out = []
    with torch.no_grad():
        for start in range(0, v.shape[0], chunk):
            stop = min(start + chunk, v.shape[0])
            yhat, state = model(v[None, start:stop], y_norm[None, start:stop], state)
            out.append(yhat[0])
    return torch.cat(out).numpy(), state


def states_along(model, v, y_norm, starts):
    """The recurrent state (batch 1) at each time in `starts` (sorted), with frozen parameters,
    from the zero state at t = 0: the initial states of truncated-BPTT windows."""
    y_norm = torch.as_tensor(y_norm, dtype=DTYPE)
    states, state, t = {}, model.zero_state(1), 0
    with torch.no_grad():
        for s in starts:
            if s > t:
                _, state = model(v[None, t:s], y_norm[None, t:s], state)
                t = s
            states[s] = state
    return states
