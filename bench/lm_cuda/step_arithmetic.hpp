// The arithmetic of one kwm-linearized step on the GPU, counted from the model's shapes as the
// step computes it (2 FLOP per multiply-add), next to the forward + backward GEMMs an AdamW step
// of the same model runs. Their ratio is the tokens/s ratio the two would have at equal FLOP
// rates: what the KWM step's extra work alone costs it, before any difference in efficiency.
#pragma once

#include <cstdint>

#include "core/lm/gpt_config.hpp"

namespace kwm::lm::bench {

struct StepArithmetic {
  double forward = 0.0;     // the GPT pass's GEMMs: four linear layers and attention per layer,
                            // the head (full score squares: the causal mask is applied after)
  double transposed = 0.0;  // J^T e: an input-side and a weight-side product per forward GEMM
  double statistics = 0.0;  // x x^T of every linear block as one full SGEMM, (d_in + 1)^2 each
  double factors = 0.0;     // potrf, n^3 / 3 per linear block
  double solves = 0.0;      // two triangular solves, n^2 x outputs each, per linear block
  double adamw = 0.0;       // forward + backward of the same GEMMs (AdamW's own update is
                            // elementwise and not counted)
  double kwm() const { return forward + transposed + statistics + factors + solves; }
};

inline StepArithmetic step_arithmetic(const GptConfig& c, std::int64_t tokens) {
  const double t = static_cast<double>(tokens), d = c.d_model,
               mlp = static_cast<double>(c.mlp_width()), len = c.context, vocab = c.vocab_size;
  StepArithmetic a;
  struct Linear {
    double inputs, outputs, count;
  };
  const double layers = c.n_layers;
  const Linear linears[] = {{d, 3.0 * d, layers},  // qkv
                            {d, d, layers},        // attention output
                            {d, mlp, layers},      // fc
                            {mlp, d, layers},      // projection
                            {d, vocab, 1.0}};      // head
  for (const Linear& l : linears) {
    const double n = l.inputs + 1.0;  // [x; 1]
    a.forward += l.count * 2.0 * t * l.inputs * l.outputs;
    a.statistics += l.count * 2.0 * t * n * n;
    a.factors += l.count * n * n * n / 3.0;
    a.solves += l.count * 2.0 * n * n * l.outputs;
  }
  a.forward += layers * 2.0 * (2.0 * t * len * d);  // K^T Q and V P^T over whole squares
  a.transposed = 2.0 * a.forward;
  a.adamw = a.forward + a.transposed;
  return a;
}

}  // namespace kwm::lm::bench
