#pragma once
// The matrix product's kernel: C = op(A)·op(B) on row-major arrays, blocked for the caches (the operands are packed
// into panels a register tile reads in order) with a register-blocked inner kernel over Eigen's packets (SSE2, AVX,
// AVX-512 alike, whatever the consumer compiles for).
//
// Every element of C is one multiply-add chain over the inner index in increasing order, c = a₀b₀ + a₁b₁ + …, each
// step rounded as (c + aₖbₖ) or, where the target has fused multiply-add, fma(aₖ, bₖ, c). A tile that covers a
// block of the inner index continues the chain it loads from C. So the bits depend on neither the blocking nor how
// the tiles are split (across threads, later) — only on the target's multiply-add — and a plain loop reproduces them.
#include <algorithm>
#include <cmath>

#include <Eigen/Core>

#include "metagrad/tensor/tensor.hpp"
#include "metagrad/threads.hpp"

namespace metagrad::detail {

/// A matrix operand read as op(X): element (i, k) is data[i * row_stride + k * col_stride].
template <class T>
struct StridedMatrix {
  const T* data;
  index_t row_stride, col_stride;
};

/// One step of every element's chain: c + a·b, fused where the target has fused multiply-add (as Eigen's pmadd).
template <class T>
T multiply_add(T a, T b, T c) {
#ifdef EIGEN_VECTORIZE_FMA
  return std::fma(a, b, c);
#else
  return c + a * b;
#endif
}

/// The register tile and cache blocks of the product for T, and the tile itself.
template <class T>
struct GemmKernel {
  using Packet = typename Eigen::internal::packet_traits<T>::type;
  static constexpr int width = Eigen::internal::unpacket_traits<Packet>::size;
  /// Register tile: rows × packets accumulators, with registers left for the packets of B and one broadcast.
  static constexpr int rows = 6;
  static constexpr int packets = EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS >= 32 ? 4 : 2;
  static constexpr int cols = packets * width;
  /// Cache blocks: a depth × cols panel of B is read by every row tile of an mc × kc block of A held in L2.
  static constexpr index_t kc = 384, mc = 120, nc = 4096;

  /// c[R × P·width] (row stride ldc) = its own values (when accumulate) continued by the chain over `depth` steps;
  /// step p reads the rows' values a[r·a_row + p·a_step] and P packets at b + p·b_step. Inlined into the dispatch
  /// below: called out of line, GCC's per-tile call and setup halved the speed of short inner extents.
  template <int R, int P>
  [[gnu::always_inline]] static void tile(index_t depth, const T* a, index_t a_row, index_t a_step, const T* b,
                                          index_t b_step, T* c, index_t ldc, bool accumulate) {
    using namespace Eigen::internal;
    Packet acc[R][P];
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < P; ++q)
        acc[r][q] = accumulate ? ploadu<Packet>(c + r * ldc + q * width) : pset1<Packet>(T(0));
    for (index_t p = 0; p < depth; ++p, a += a_step, b += b_step) {
      Packet bp[P];
      for (int q = 0; q < P; ++q) bp[q] = ploadu<Packet>(b + q * width);
      for (int r = 0; r < R; ++r) {
        const Packet ap = pset1<Packet>(a[r * a_row]);
        for (int q = 0; q < P; ++q) acc[r][q] = pmadd(ap, bp[q], acc[r][q]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < P; ++q) pstoreu(c + r * ldc + q * width, acc[r][q]);
  }

  /// The tile for R rows and the first `used` packets of a panel (a panel at the right edge is narrower).
  template <int R>
  static void tile(int used, index_t depth, const T* a, index_t a_row, index_t a_step, const T* b, index_t b_step,
                   T* c, index_t ldc, bool accumulate) {
    static_assert(packets == 2 || packets == 4);
    switch (used) {
      case 1: return tile<R, 1>(depth, a, a_row, a_step, b, b_step, c, ldc, accumulate);
      case 2: return tile<R, 2>(depth, a, a_row, a_step, b, b_step, c, ldc, accumulate);
      case 3:
        if constexpr (packets == 4) return tile<R, 3>(depth, a, a_row, a_step, b, b_step, c, ldc, accumulate);
        break;
      default:
        if constexpr (packets == 4) return tile<R, 4>(depth, a, a_row, a_step, b, b_step, c, ldc, accumulate);
        break;
    }
  }

  /// The tile for the first `height` rows (the bottom edge has fewer) and the first `used` packets.
  static void tile(int height, int used, index_t depth, const T* a, index_t a_row, index_t a_step, const T* b,
                   index_t b_step, T* c, index_t ldc, bool accumulate) {
    static_assert(rows == 6);
    switch (height) {
      case 1: return tile<1>(used, depth, a, a_row, a_step, b, b_step, c, ldc, accumulate);
      case 2: return tile<2>(used, depth, a, a_row, a_step, b, b_step, c, ldc, accumulate);
      case 3: return tile<3>(used, depth, a, a_row, a_step, b, b_step, c, ldc, accumulate);
      case 4: return tile<4>(used, depth, a, a_row, a_step, b, b_step, c, ldc, accumulate);
      case 5: return tile<5>(used, depth, a, a_row, a_step, b, b_step, c, ldc, accumulate);
      default: return tile<6>(used, depth, a, a_row, a_step, b, b_step, c, ldc, accumulate);
    }
  }
};

/// Copies the `count` (≤ N) values src[k · stride] to out[k], all N at once when it can (unrolled, vectorized).
template <int N, class T>
void copy_strided(const T* src, index_t stride, index_t count, T* out) {
  if (count == N && stride == 1)
    for (int k = 0; k < N; ++k) out[k] = src[k];
  else
    for (index_t k = 0; k < count; ++k) out[k] = src[k * stride];
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"  // Eigen's packets as template arguments, as inside Eigen
/// Transposes squares of packets: Eigen's half-width packets, whose transposes do not start from AVX-512's
/// "undefined" vectors (which GCC 12 reports as used uninitialized).
template <class T>
struct Square {
  using Packet = typename Eigen::internal::unpacket_traits<typename GemmKernel<T>::Packet>::half;
  static constexpr int width = Eigen::internal::unpacket_traits<Packet>::size;
  /// The next `width` steps of N rows at src (row stride `stride`; rows from `rows` on read as 0) as `width` groups
  /// of N at out. When N is not a multiple of the width, each group's last store runs into the next group, which is
  /// stored after it, and the last one runs up to `width` values past the block (the buffers leave that room).
  template <int N>
  static void transpose(const T* src, index_t stride, index_t rows, T* out) {
    using namespace Eigen::internal;
    constexpr int squares = (N + width - 1) / width, held = N % width == 0 ? 1 : squares;
    for (int s0 = 0; s0 < squares; s0 += held) {
      PacketBlock<Packet, width> square[held];
      for (int s = 0; s < held; ++s) {
        for (int k = 0; k < width; ++k) {
          const index_t r = (s0 + s) * width + k;
          square[s].packet[k] = r < rows ? ploadu<Packet>(src + r * stride) : pset1<Packet>(T(0));
        }
        ptranspose(square[s]);
      }
      for (int k = 0; k < width; ++k)
        for (int s = 0; s < held; ++s) pstoreu(out + k * N + (s0 + s) * width, square[s].packet[k]);
    }
  }
};
#pragma GCC diagnostic pop

/// Packs the block X[i0 : i0+height, p0 : p0+depth] of a matrix operand as panels of N of its rows, each stored as
/// `depth` groups of N (zero past the height): op(A) as the tiles' rows, op(B)ᵀ as their columns. The copy runs
/// along the operand's unit stride; a transposing copy goes a square of packets at a time, and one step at a time
/// through the last steps. Kept out of line: GCC 12, propagating a caller's constant extents into it, warns of loops
/// it cannot bound (-Waggressive-loop-optimizations); a call per block costs nothing.
template <int N, class T>
[[gnu::noinline]] void pack(StridedMatrix<T> X, index_t i0, index_t height, index_t p0, index_t depth, T* out) {
  for (index_t i = 0; i < height; i += N, out += depth * N) {
    const index_t h = std::min<index_t>(N, height - i);
    const T* src = X.data + (i0 + i) * X.row_stride + p0 * X.col_stride;
    index_t p = 0;
    if (X.col_stride == 1 && X.row_stride != 1)  // each row's steps are contiguous: transpose
      for (; p + Square<T>::width <= depth; p += Square<T>::width)
        Square<T>::template transpose<N>(src + p, X.row_stride, h, out + p * N);
    for (; p < depth; ++p) copy_strided<N>(src + p * X.col_stride, X.row_stride, h, out + p * N);
    if (h < N)
      for (p = 0; p < depth; ++p) std::fill(out + p * N + h, out + (p + 1) * N, T(0));
  }
}

/// C = op(A)·op(B) by the plain loop, the same chains, for products too small or too narrow to repay packing: each
/// row of C is swept once per inner index, four rows at a time so that a narrow C still has chains to overlap. With
/// `accumulate`, each element's chain continues from C's value instead of starting at 0.
template <class T>
void gemm_loop(index_t m, index_t n, index_t depth, StridedMatrix<T> A, StridedMatrix<T> B, T* C, index_t ldc,
               bool accumulate = false) {
  constexpr index_t block = 4;
  if (!accumulate)
    for (index_t i = 0; i < m; ++i) std::fill(C + i * ldc, C + i * ldc + n, T(0));
  for (index_t i0 = 0; i0 < m; i0 += block) {
    const index_t rows = std::min(block, m - i0);
    for (index_t p = 0; p < depth; ++p) {
      const T* b = B.data + p * B.row_stride;
      for (index_t r = 0; r < rows; ++r) {
        const T a = A.data[(i0 + r) * A.row_stride + p * A.col_stride];
        T* c = C + (i0 + r) * ldc;
        for (index_t j = 0; j < n; ++j) c[j] = multiply_add(a, b[j * B.col_stride], c[j]);
      }
    }
  }
}

/// C [m × n] (row stride ldc) = op(A) [m × depth] · op(B) [depth × n], on the calling thread. With `accumulate`,
/// each element's chain continues from C's value: a product over depths d₁ then d₂ gives the bits of one over d₁ + d₂.
template <class T>
void gemm_serial(index_t m, index_t n, index_t depth, StridedMatrix<T> A, StridedMatrix<T> B, T* C, index_t ldc,
                 bool accumulate = false) {
  using K = GemmKernel<T>;
  constexpr int MR = K::rows, NR = K::cols;
  if (m * n * depth <= 4096 || n < K::width) return gemm_loop(m, n, depth, A, B, C, ldc, accumulate);
  const index_t nc_max = std::min<index_t>(K::nc, (n + NR - 1) / NR * NR);
  const index_t mc_max = std::min<index_t>(K::mc, (m + MR - 1) / MR * MR);
  const index_t kc_max = std::min<index_t>(K::kc, depth);
  // A feeds the tiles directly, unpacked, when few column panels would share its packed copy and a tile's rows or
  // steps are contiguous in it (a row-major A, or a transposed one).
  const bool direct_a = (A.col_stride == 1 || A.row_stride == 1) && n <= 2 * NR;
  // So does a row-major B whose rows are whole packets when all the row tiles form one block (a long inner index,
  // say): its rows are no farther apart than its packed panels, and packing it would cost as much as the tiles save.
  const bool direct_b = B.col_stride == 1 && n % K::width == 0 && n <= 2 * NR && m <= K::mc;
  constexpr index_t room = Square<T>::width;  // what a transposing pack may write past its block
  Tensor<T> packed_b = Tensor<T>::uninitialized(Shape{direct_b ? 0 : kc_max * nc_max + room});
  Tensor<T> packed_a = Tensor<T>::uninitialized(Shape{direct_a ? 0 : kc_max * mc_max + room});
  alignas(64) T edge[MR * NR];
  for (index_t jc = 0; jc < n; jc += K::nc) {
    const index_t nb = std::min(K::nc, n - jc);
    for (index_t pc = 0; pc < depth; pc += K::kc) {
      const index_t kb = std::min(K::kc, depth - pc);
      const bool continued = accumulate || pc > 0;
      if (!direct_b) pack<NR>(StridedMatrix<T>{B.data, B.col_stride, B.row_stride}, jc, nb, pc, kb, packed_b.data());
      for (index_t ic = 0; ic < m; ic += K::mc) {
        const index_t mb = std::min(K::mc, m - ic);
        if (!direct_a) pack<MR>(A, ic, mb, pc, kb, packed_a.data());
        for (index_t j0 = 0; j0 < nb; j0 += NR) {
          const T* bp = direct_b ? B.data + pc * B.row_stride + jc + j0 : packed_b.data() + j0 * kb;
          const index_t b_step = direct_b ? B.row_stride : NR;
          const index_t w = std::min<index_t>(NR, nb - j0);
          const int used = static_cast<int>((w + K::width - 1) / K::width);
          for (index_t i0 = 0; i0 < mb; i0 += MR) {
            const int h = static_cast<int>(std::min<index_t>(MR, mb - i0));
            const T* ap = direct_a ? A.data + (ic + i0) * A.row_stride + pc * A.col_stride : packed_a.data() + i0 * kb;
            const index_t a_row = direct_a ? A.row_stride : 1, a_step = direct_a ? A.col_stride : MR;
            T* c = C + (ic + i0) * ldc + jc + j0;
            if (w == used * K::width) {
              K::tile(h, used, kb, ap, a_row, a_step, bp, b_step, c, ldc, continued);
              continue;
            }
            // A tile past the right edge runs on a copy and writes back the part inside C.
            if (continued)
              for (index_t r = 0; r < h; ++r) std::copy_n(c + r * ldc, w, edge + r * NR);
            K::tile(h, used, kb, ap, a_row, a_step, bp, b_step, edge, NR, continued);
            for (index_t r = 0; r < h; ++r) std::copy_n(edge + r * NR, w, c + r * ldc);
          }
        }
      }
    }
  }
}

/// The multiply-adds of a product's share that repay waking a thread (which takes tens of microseconds).
inline constexpr index_t min_parallel_work = index_t(1) << 18;

/// C [m × n] (row-major, row stride n) = op(A) [m × depth] · op(B) [depth × n], on metagrad's threads: C is cut
/// into strips of whole tiles along its longer side (the other operand is packed once per strip), one per thread.
/// Every element's chain runs whole in one strip, so the bits are those of the serial product. With `accumulate`, the
/// chains continue from C's values (see gemm_serial).
template <class T>
void gemm(index_t m, index_t n, index_t depth, StridedMatrix<T> A, StridedMatrix<T> B, T* C, bool accumulate = false) {
  using K = GemmKernel<T>;
  const index_t tasks = std::min<index_t>(num_threads(), m * n * depth / min_parallel_work);
  if (tasks <= 1) return gemm_serial(m, n, depth, A, B, C, n, accumulate);
  const bool by_rows = m >= n;
  const index_t extent = by_rows ? m : n, unit = by_rows ? K::rows : K::cols;
  const index_t strip = ((extent + tasks - 1) / tasks + unit - 1) / unit * unit;
  parallel_for((extent + strip - 1) / strip, [&](std::int64_t t) {
    const index_t begin = t * strip, size = std::min(strip, extent - begin);
    if (by_rows)
      gemm_serial(size, n, depth, StridedMatrix<T>{A.data + begin * A.row_stride, A.row_stride, A.col_stride}, B,
                  C + begin * n, n, accumulate);
    else
      gemm_serial(m, size, depth, A, StridedMatrix<T>{B.data + begin * B.col_stride, B.row_stride, B.col_stride},
                  C + begin, n, accumulate);
  });
}

}  // namespace metagrad::detail
