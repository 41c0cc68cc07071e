#include "core/lm/learners/ensemble_draws.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kwm::lm {

Eigen::MatrixXd member_draws(std::uint64_t seed, RandomPurpose purpose, std::uint64_t step,
                             Eigen::Index rows, Eigen::Index members, double std, bool antithetic) {
  if (antithetic && members % 2 != 0)
    throw std::invalid_argument("antithetic member draws need an even member count; got " +
                                std::to_string(members));
  Eigen::MatrixXd out(rows, members);
  const Eigen::Index stride_j = antithetic ? 2 : 1;  // the drawn columns
  const auto draw = [&](Eigen::Index first, Eigen::Index stride) {
    for (Eigen::Index j = first * stride_j; j < members; j += stride * stride_j) {
      out.col(j) =
          normal_vector(stream_seed(seed, purpose, step, static_cast<std::uint64_t>(j)), rows, std);
      if (antithetic) out.col(j + 1) = -out.col(j);
    }
  };
  const Eigen::Index drawn = members / stride_j;
  const auto threads = static_cast<Eigen::Index>(
      std::min<unsigned>(std::max(std::thread::hardware_concurrency(), 1u),
                         static_cast<unsigned>(std::max<Eigen::Index>(drawn, 1))));
  if (threads <= 1 || rows * members < 65536) {
    draw(0, 1);
    return out;
  }
  std::vector<std::thread> pool;
  for (Eigen::Index t = 1; t < threads; ++t) pool.emplace_back(draw, t, threads);
  draw(0, threads);
  for (auto& t : pool) t.join();
  return out;
}

}  // namespace kwm::lm
