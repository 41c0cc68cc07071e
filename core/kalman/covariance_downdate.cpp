// Plain and Joseph-type covariance downdates through the backend's Riccati kernels.
#include "core/kalman/covariance_downdate.hpp"

#include <stdexcept>

namespace kwm {

template <typename T>
void downdate_covariance(Backend<T>& backend, ParameterBlock<T>& block, const Tensor<T>& gain,
                         const Tensor<T>& u, const Tensor<T>& s, bool joseph,
                         Tensor<T>& workspace) {
  if (block.form != Form::covariance || block.kind == BlockKind::shared_row) {
    throw std::invalid_argument("downdate_covariance: needs a dense or diagonal covariance block");
  }
  Tensor<T>& p = block.covariance;
  const bool dense = block.kind == BlockKind::dense;
  auto downdate = [&](const Tensor<T>& k, const Tensor<T>& v) {
    if (dense) {
      backend.riccati_downdate(p, k, v);  // P - (k v^T + v k^T) / 2
    } else {
      backend.diagonal_downdate(p, k, v);  // p_i - sum_j k_ij v_ij
    }
  };
  if (!joseph) {
    downdate(gain, u);
  } else {
    // Twice the symmetric half gives - K U^T - U K^T.
    downdate(gain, u);
    downdate(gain, u);
    // + K S K^T: workspace = -K S, then the same downdate subtracts (-K S) K^T.
    backend.gemm(Op::none, Op::none, T(-1), gain, s, T(0), workspace);
    downdate(workspace, gain);
  }
  // No symmetrize pass: Backend::riccati_downdate returns P exactly symmetric (one triangle is
  // computed and mirrored), which is what ALGORITHMS.md section 7's symmetrisation asks for, at
  // no extra pass over P.
}

template void downdate_covariance(Backend<float>&, ParameterBlock<float>&, const Tensor<float>&,
                                  const Tensor<float>&, const Tensor<float>&, bool, Tensor<float>&);
template void downdate_covariance(Backend<double>&, ParameterBlock<double>&, const Tensor<double>&,
                                  const Tensor<double>&, const Tensor<double>&, bool,
                                  Tensor<double>&);

}  // namespace kwm
