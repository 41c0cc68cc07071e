// Token plus position embedding and its transposed Jacobian (scatter-add of columns into rows).
#include "core/lm/embedding.hpp"

namespace kwm::lm {

template <typename T>
Matrix<T> embed(const Matrix<T>& token_embedding, const Matrix<T>& position_embedding,
                const std::vector<std::int32_t>& tokens, int batch, int length) {
  Matrix<T> x(token_embedding.cols(), static_cast<Eigen::Index>(batch) * length);
  for (int b = 0; b < batch; ++b) {
    for (int t = 0; t < length; ++t) {
      const Eigen::Index n = static_cast<Eigen::Index>(b) * length + t;
      x.col(n) =
          (token_embedding.row(tokens[static_cast<std::size_t>(n)]) + position_embedding.row(t))
              .transpose();
    }
  }
  return x;
}

template <typename T>
void embed_transpose(const std::vector<std::int32_t>& tokens, int batch, int length,
                     const Matrix<T>& g, Matrix<T>& token_out, Matrix<T>& position_out) {
  for (int b = 0; b < batch; ++b) {
    // Positions: the columns of one sequence are contiguous, so this is one block add.
    const Eigen::Index first = static_cast<Eigen::Index>(b) * length;
    position_out.topRows(length) += g.middleCols(first, length).transpose();
    for (int t = 0; t < length; ++t) {
      const Eigen::Index n = first + t;
      token_out.row(tokens[static_cast<std::size_t>(n)]) += g.col(n).transpose();
    }
  }
}

template Matrix<double> embed(const Matrix<double>&, const Matrix<double>&,
                              const std::vector<std::int32_t>&, int, int);
template Matrix<float> embed(const Matrix<float>&, const Matrix<float>&,
                             const std::vector<std::int32_t>&, int, int);
template void embed_transpose(const std::vector<std::int32_t>&, int, int, const Matrix<double>&,
                              Matrix<double>&, Matrix<double>&);
template void embed_transpose(const std::vector<std::int32_t>&, int, int, const Matrix<float>&,
                              Matrix<float>&, Matrix<float>&);

}  // namespace kwm::lm
