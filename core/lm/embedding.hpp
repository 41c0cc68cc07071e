// Token plus position embedding of a batch (d x N), and its transposed Jacobian (a scatter-add).
#pragma once

#include <cstdint>
#include <vector>

#include "core/lm/gpt_parameters.hpp"

namespace kwm::lm {

// Column b*T + t = token_embedding.row(tokens[b*T+t])^T + position_embedding.row(t)^T.
// Tokens are assumed validated (see validate_batch in gpt_forward.hpp).
template <typename T>
Matrix<T> embed(const Matrix<T>& token_embedding, const Matrix<T>& position_embedding,
                const std::vector<std::int32_t>& tokens, int batch, int length);

// Given g (d x N): token_out.row(token) += g.col(n)^T, position_out.row(t) += g.col(n)^T.
template <typename T>
void embed_transpose(const std::vector<std::int32_t>& tokens, int batch, int length,
                     const Matrix<T>& g, Matrix<T>& token_out, Matrix<T>& position_out);

}  // namespace kwm::lm
