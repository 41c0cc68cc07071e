// The counting model behind every FLOP/s and bytes_per_second figure (docs/performance.md).
// FLOPs: the arithmetic of the equations as the backend evaluates them (the downdate in its
// symmetric form (K U^T + U K^T) / 2 on one triangle: 2 n^2 m), no credit for redundant passes
// (symmetrising, transposing H by a GEMM with I_m). Bytes: compulsory traffic, every operand read
// or written once per kernel that needs it; scratch copies a better kernel would avoid are not
// counted, so bandwidth figures are conservative.
#pragma once

#include "core/backend/tensor.hpp"

namespace kwm::bench {

struct Work {
  double flops = 0.0;
  double bytes = 0.0;
  Work& operator+=(const Work& other) {
    flops += other.flops;
    bytes += other.bytes;
    return *this;
  }
};

// One dense block of ALGORITHMS.md section 2 (n parameters, m outputs), scalar size s:
//   U = P H^T 2 n^2 m; H U 2 n m^2; K = U S^-1 (two triangular solves) 2 n m^2; m += K e 2 n m;
//   P -= (K U^T + U K^T) / 2 on one triangle 2 n^2 m.
// Bytes: P read by the U product, read and written by the downdate (3 n^2); the n x m operands
// H, U and K 13 times (U: H in, U out; S: H, U; copy U to K: 2; two in-place solves: 4;
// mean: K; downdate: K, U).
inline Work dense_block_work(Index n, Index m, double s) {
  const double dn = static_cast<double>(n);
  const double dm = static_cast<double>(m);
  return {4.0 * dn * dn * dm + 4.0 * dn * dm * dm + 2.0 * dn * dm,
          s * (3.0 * dn * dn + 13.0 * dn * dm)};
}

// One diagonal block (variances p, n x 1): U = diag(p) H^T n m; H U 2 n m^2; K 2 n m^2;
// m += K e 2 n m; p_i -= sum_j K_ij U_ij 2 n m. Bytes: p read twice, written once (3 n); the
// n x m operands 15 times (the 13 above plus U written by the transpose and rescaled in place).
inline Work diagonal_block_work(Index n, Index m, double s) {
  const double dn = static_cast<double>(n);
  const double dm = static_cast<double>(m);
  return {4.0 * dn * dm * dm + 5.0 * dn * dm, s * (3.0 * dn + 15.0 * dn * dm)};
}

// Done once per update whatever the blocks: S = R + sum, Cholesky m^3 / 3, the NIS solve.
inline Work innovation_work(Index m, double s) {
  const double dm = static_cast<double>(m);
  return {dm * dm * dm / 3.0 + 3.0 * dm * dm, s * 4.0 * dm * dm};
}

// Shared-row per-sample update, input dimension d, output dimension q (W is q x d):
//   u = P a 2 d^2; a^T u 2 d; W a 2 q d; W += r k^T 2 q d; P -= (k u^T + u k^T) / 2 2 d^2.
// Bytes: P read once and read+written once (3 d^2), W likewise (3 q d).
inline Work shared_row_sample_work(Index d, Index q, double s) {
  const double dd = static_cast<double>(d);
  const double dq = static_cast<double>(q);
  return {4.0 * dd * dd + 4.0 * dq * dd + 2.0 * dd, s * (3.0 * dd * dd + 3.0 * dq * dd)};
}

// Shared-row batch statistics for N samples: (1/r) A A^T on one triangle N d^2, (1/r) Z A^T
// 2 q d N. Bytes: L and B read and written (2 d^2 + 2 q d), A and Z read (d N + q N).
inline Work shared_row_accumulate_work(Index d, Index q, Index batch, double s) {
  const double dd = static_cast<double>(d);
  const double dq = static_cast<double>(q);
  const double dn = static_cast<double>(batch);
  return {dn * dd * dd + 2.0 * dq * dd * dn, s * (2.0 * dd * dd + 2.0 * dq * dd + (dd + dq) * dn)};
}

// Shared-row apply: Cholesky of lambda L + stats d^3 / 3, W = B L^-1 (two triangular solves)
// 2 q d^2. Bytes: L: statistics and old L read, new L written, factor written and read (5 d^2);
// B: statistics and old B read, new B written; W written, then solved in place (6 q d).
inline Work shared_row_apply_work(Index d, Index q, double s) {
  const double dd = static_cast<double>(d);
  const double dq = static_cast<double>(q);
  return {dd * dd * dd / 3.0 + 2.0 * dq * dd * dd, s * (5.0 * dd * dd + 6.0 * dq * dd)};
}

}  // namespace kwm::bench
