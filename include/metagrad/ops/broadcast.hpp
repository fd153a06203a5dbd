#pragma once
// Numpy-style broadcasting for Tensor<T>: binary kernels, broadcast_to and its adjoint sum_to.
// Every pattern runs as contiguous runs: the output's axes are merged wherever neither operand changes how it steps,
// so the innermost loop is one Eigen array expression over a run (each operand contiguous along it, or one value
// repeated), and only the outer loops (at most three) step by index.
#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "metagrad/tensor/tensor.hpp"
#include "metagrad/threads.hpp"

namespace metagrad {
namespace detail {

/// The size of the blocks that elementwise work and sums are split into. Fixed, so that the blocks, and with them the
/// bits of every result, are the same on any number of threads.
constexpr index_t block_size = index_t(1) << 15;

/// Below this many elements, elementwise work stays on the calling thread (in the same blocks): waking the workers
/// would cost more than it saves.
constexpr index_t min_parallel_elements = index_t(1) << 18;

/// f(begin, count) for each block of [0, n), on metagrad's threads when there are several and n is large enough.
template <class F>
void for_blocks(index_t n, F f) {
  if (n <= block_size) return f(index_t(0), n);
  const auto block = [&](std::int64_t i) { f(i * block_size, std::min(block_size, n - i * block_size)); };
  const index_t blocks = (n + block_size - 1) / block_size;
  if (n < min_parallel_elements)
    for (index_t i = 0; i < blocks; ++i) block(i);
  else
    parallel_for(blocks, block);
}

/// x with f applied to each block of its elements, in place: f(array) assigns to the array it is given.
template <class T, class F>
Tensor<T> map_blocks(Tensor<T> x, F f) {
  for_blocks(x.size(), [&](index_t begin, index_t count) {
    f(Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(x.data() + begin, count));
  });
  return x;
}

/// f(begin, end) for parts of [0, n) whose results do not depend on how [0, n) is split (independent outputs): one
/// part per thread when the work, n · cost_per_item, is large enough to pay for the threads, else one part.
template <class F>
void for_parts(index_t n, index_t cost_per_item, F f) {
  const index_t parts = std::min<index_t>(n, num_threads());
  if (parts <= 1 || n * cost_per_item < min_parallel_elements) return f(index_t(0), n);
  parallel_for(parts, [&](std::int64_t i) { f(n * i / parts, n * (i + 1) / parts); });
}

/// `out`'s elements as runs of contiguous elements, with the offsets at which operands a and b (which broadcast to
/// out) are read: axes of extent 1 dropped and neighbouring axes merged where both operands continue across them.
/// The innermost axis steps each operand by 1 (it varies along the run) or 0 (one value for the whole run).
struct BroadcastRuns {
  std::array<index_t, 3> extent{1, 1, 1};     ///< the loops around the runs, outermost first (unused ones are 1)
  std::array<index_t, 3> step_a{}, step_b{};  ///< how far a and b move per step of each loop
  index_t length = 1;                        ///< elements per run
  bool a_varies = false, b_varies = false;   ///< whether a (b) steps along a run, or repeats one value

  BroadcastRuns(const Shape& out, const Shape& a, const Shape& b) {
    std::array<index_t, Shape::max_rank> dims{}, sa{}, sb{};
    int n = 0;  // the kept axes, outermost first
    for (int i = 0; i < out.rank(); ++i) {
      if (out[i] == 1) continue;
      const int ia = i - (out.rank() - a.rank()), ib = i - (out.rank() - b.rank());
      const index_t step_a_i = (ia >= 0 && a[ia] != 1) ? a.stride(ia) : 0;
      const index_t step_b_i = (ib >= 0 && b[ib] != 1) ? b.stride(ib) : 0;
      if (n > 0 && sa[n - 1] == step_a_i * out[i] && sb[n - 1] == step_b_i * out[i]) {  // continues the axis before
        dims[n - 1] *= out[i];
        sa[n - 1] = step_a_i;
        sb[n - 1] = step_b_i;
        continue;
      }
      dims[n] = out[i], sa[n] = step_a_i, sb[n] = step_b_i;
      ++n;
    }
    if (n == 0) return;  // a single element
    length = dims[n - 1];
    a_varies = sa[n - 1] != 0;
    b_varies = sb[n - 1] != 0;
    for (int k = 0, at = 4 - n; k < n - 1; ++k, ++at)  // the innermost loops are the ones used
      extent[at] = dims[k], step_a[at] = sa[k], step_b[at] = sb[k];
  }

  /// fn(out_offset, a_offset, b_offset) for the first element of every run, in row-major order of out.
  template <class Fn>
  void for_each(Fn&& fn) const {
    const auto &e = extent, &ta = step_a, &tb = step_b;
    index_t o = 0;
    for (index_t i0 = 0; i0 < e[0]; ++i0)
      for (index_t i1 = 0; i1 < e[1]; ++i1)
        for (index_t i2 = 0; i2 < e[2]; ++i2, o += length)
          fn(o, i0 * ta[0] + i1 * ta[1] + i2 * ta[2], i0 * tb[0] + i1 * tb[1] + i2 * tb[2]);
  }

  /// fn(out_offset, a_offset, b_offset, count) for the pieces of runs that cover out's elements [begin, begin + count).
  template <class Fn>
  void for_each_in(index_t begin, index_t count, Fn&& fn) const {
    if (count == 0) return;  // (an empty output may have runs of length 0)
    const auto &e = extent, &ta = step_a, &tb = step_b;
    const index_t run = begin / length, end = begin + count;
    index_t i2 = run % e[2], i1 = run / e[2] % e[1], i0 = run / (e[2] * e[1]), skip = begin - run * length;
    for (index_t o = begin; o < end; skip = 0) {
      const index_t n = std::min(length - skip, end - o);
      fn(o, i0 * ta[0] + i1 * ta[1] + i2 * ta[2] + (a_varies ? skip : 0),
         i0 * tb[0] + i1 * tb[1] + i2 * tb[2] + (b_varies ? skip : 0), n);
      o += n;
      if (++i2 == e[2]) {
        i2 = 0;
        if (++i1 == e[1]) i1 = 0, ++i0;
      }
    }
  }
};

/// True when `small` equals the trailing axes of `big` (a bias-like vector broadcast over rows).
inline bool is_suffix(const Shape& small, const Shape& big) {
  if (small.rank() > big.rank() || small.rank() == 0) return false;
  for (int i = 1; i <= small.rank(); ++i)
    if (small[small.rank() - i] != big[big.rank() - i]) return false;
  return true;
}

/// True when `small` is `big` with its last extent set to 1 (one value per row).
inline bool is_row_constant(const Shape& small, const Shape& big) {
  if (small.rank() != big.rank() || big.rank() == 0 || small[small.rank() - 1] != 1) return false;
  for (int i = 0; i + 1 < big.rank(); ++i)
    if (small[i] != big[i]) return false;
  return true;
}

template <class T> using ConstRun = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T> using Run = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;

/// The sum of x[0 .. n) in a fixed order that does not depend on where x lies in memory: four packet-wide partial
/// sums over whole groups of four packets, added as (s₀ + s₁) + (s₂ + s₃) and then across the packet's lanes (Eigen's
/// predux), then the elements left over one by one. Short runs are summed one by one. Four independent partial sums
/// keep the adds from waiting on each other, so a long run sums at memory bandwidth.
template <class T> T sum_run(const T* x, index_t n) {
  using namespace Eigen::internal;
  using Packet = typename packet_traits<T>::type;
  constexpr index_t width = packet_traits<T>::size, block = 4 * width;
  T total = 0;
  index_t i = 0;
  if (n >= block) {
    Packet s0 = ploadu<Packet>(x), s1 = ploadu<Packet>(x + width), s2 = ploadu<Packet>(x + 2 * width),
           s3 = ploadu<Packet>(x + 3 * width);
    for (i = block; i + block <= n; i += block) {
      s0 = padd(s0, ploadu<Packet>(x + i));
      s1 = padd(s1, ploadu<Packet>(x + i + width));
      s2 = padd(s2, ploadu<Packet>(x + i + 2 * width));
      s3 = padd(s3, ploadu<Packet>(x + i + 3 * width));
    }
    total = predux(padd(padd(s0, s1), padd(s2, s3)));
  }
  for (; i < n; ++i) total += x[i];
  return total;
}

/// The sum of n rows of d elements (x row-major) into out[d], reading x row after row (at memory bandwidth; Eigen's
/// rowwise().sum() of the transposed view reads it one packet-wide column at a time), in the order that expression
/// sums, so its bits are kept: for the outputs it assigns in packets, x₀ + ((x₁ + x₂) + (x₃ + x₄)) + … and then the
/// rows left over one by one; for the last d mod (packet size) outputs, one row after another. (Below 32 columns,
/// the expression itself.)
template <class T> void sum_rows(const T* x, index_t n, index_t d, T* out) {
  if (n == 0) {
    std::fill_n(out, d, T(0));
    return;
  }
  if (d < 32) {  // a few columns: the expression itself is as fast (a column pass reads every row's few cache lines)
    Run<T>(out, d) = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic>>(x, d, n).rowwise().sum();
    return;
  }
  // Each output's sum is the same whichever columns are summed with it, so the packet-wide columns are split over the
  // threads.
  constexpr index_t packet = Eigen::internal::packet_traits<T>::size;
  const index_t body = d / packet * packet;
  for_parts(body / packet, n * packet, [&](index_t first, index_t last) {
    const index_t begin = first * packet, count = (last - first) * packet;
    const auto row = [&](index_t i) { return ConstRun<T>(x + i * d + begin, count); };
    Run<T> sum(out + begin, count);
    sum = row(0);
    index_t i = 1;
    for (const index_t fours = (n - 1) & ~index_t(3); i < fours; i += 4)
      sum += (row(i) + row(i + 1)) + (row(i + 2) + row(i + 3));
    for (; i < n; ++i) sum += row(i);
  });
  for (index_t j = body; j < d; ++j) {
    T s = x[j];
    for (index_t r = 1; r < n; ++r) s += x[r * d + j];
    out[j] = s;
  }
}

/// The sum of each of n rows of d elements (x row-major) into out[n]: Eigen's sum of each row, the rows split over
/// the threads.
template <class T> void sum_each_row(const T* x, index_t n, index_t d, T* out) {
  for_parts(n, d, [&](index_t first, index_t last) {
    Run<T>(out + first, last - first) =
        Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic>>(x + first * d, d, last - first)
            .colwise()
            .sum()
            .transpose();
  });
}

/// The sum of x[0 .. n): Eigen's sum of each fixed block, and the blocks' sums added in order.
template <class T> T sum_all(const T* x, index_t n) {
  if (n <= block_size) return ConstRun<T>(x, n).sum();
  std::vector<T> partial(static_cast<std::size_t>((n + block_size - 1) / block_size));
  for_blocks(n, [&](index_t begin, index_t count) { partial[begin / block_size] = ConstRun<T>(x + begin, count).sum(); });
  T total = 0;
  for (const T p : partial) total += p;
  return total;
}

/// out = f(a, b) with broadcasting; f is a generic callable valid on Eigen arrays, on scalars and on mixes. The output
/// is computed in fixed blocks (each element on its own, so the bits do not depend on the blocks either).
template <class T, class F>
Tensor<T> broadcast_binary(const char* op, const Tensor<T>& a, const Tensor<T>& b, F f) {
  const Shape shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(op, a.shape(), b.shape());
  Tensor<T> out = Tensor<T>::uninitialized(shape);
  const BroadcastRuns runs(shape, a.shape(), b.shape());
  for_blocks(shape.size(), [&](index_t begin, index_t count) {
    runs.for_each_in(begin, count, [&](index_t o, index_t ia, index_t ib, index_t n) {
      Run<T> r(out.data() + o, n);
      if (runs.a_varies && runs.b_varies) r = f(ConstRun<T>(a.data() + ia, n), ConstRun<T>(b.data() + ib, n));
      else if (runs.a_varies) r = f(ConstRun<T>(a.data() + ia, n), b.data()[ib]);
      else if (runs.b_varies) r = f(a.data()[ia], ConstRun<T>(b.data() + ib, n));
      else r.setConstant(f(a.data()[ia], b.data()[ib]));
    });
  });
  return out;
}

}  // namespace detail

/// Repeats x along broadcast axes to `shape` (numpy rules).
template <class T>
Tensor<T> broadcast_to(const Tensor<T>& x, const Shape& shape) {
  if (!(broadcast_shapes("broadcast_to", x.shape(), shape) == shape))
    throw shape_error("broadcast_to: shape " + x.shape().str() + " cannot be broadcast to " + shape.str());
  if (x.shape() == shape) return x;
  Tensor<T> out = Tensor<T>::uninitialized(shape);
  const detail::BroadcastRuns runs(shape, x.shape(), x.shape());
  detail::for_blocks(shape.size(), [&](index_t begin, index_t count) {
    runs.for_each_in(begin, count, [&](index_t o, index_t ix, index_t, index_t n) {
      detail::Run<T> r(out.data() + o, n);
      if (runs.a_varies) r = detail::ConstRun<T>(x.data() + ix, n);
      else r.setConstant(x.data()[ix]);
    });
  });
  return out;
}

/// Sums x over the axes along which `shape` was broadcast to x's shape: the adjoint of broadcast_to.
template <class T>
Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape) {
  if (!(broadcast_shapes("sum_to", shape, x.shape()) == x.shape()))
    throw shape_error("sum_to: shape " + x.shape().str() + " cannot be summed to " + shape.str() +
                      " (the target must broadcast to the source)");
  if (x.shape() == shape) return x;
  Tensor<T> out = Tensor<T>::uninitialized(shape);
  if (shape.size() == 1) {
    out.data()[0] = detail::sum_all(x.data(), x.size());
  } else if (detail::is_suffix(shape, x.shape())) {
    detail::sum_rows(x.data(), x.size() / shape.size(), shape.size(), out.data());
  } else if (detail::is_row_constant(shape, x.shape())) {
    detail::sum_each_row(x.data(), shape.size(), x.shape()[x.rank() - 1], out.data());
  } else {
    // Each output element adds its inputs run by run in x's row-major order: along a run, either every element goes
    // to its own output (one vectorized add) or all go to one (sum_run's fixed order, then added to the output).
    out.array().setZero();
    const detail::BroadcastRuns runs(x.shape(), shape, shape);
    const index_t n = runs.length;
    runs.for_each([&](index_t ix, index_t io, index_t) {
      if (runs.a_varies) detail::Run<T>(out.data() + io, n) += detail::ConstRun<T>(x.data() + ix, n);
      else out.data()[io] += detail::sum_run(x.data() + ix, n);
    });
  }
  return out;
}

/// broadcast_to of a temporary: returned as it is when it has the shape already.
template <class T>
Tensor<T> broadcast_to(Tensor<T>&& x, const Shape& shape) {
  return x.shape() == shape ? std::move(x) : broadcast_to(std::as_const(x), shape);
}

/// sum_to of a temporary: returned as it is when it has the shape already (the common case of an equal-shaped op).
template <class T>
Tensor<T> sum_to(Tensor<T>&& x, const Shape& shape) {
  return x.shape() == shape ? std::move(x) : sum_to(std::as_const(x), shape);
}

}  // namespace metagrad
