// Question: how fast is metagrad's matrix product (its own kernel, ops/gemm.hpp, behind matmul) against OpenBLAS's
// and against Eigen's (what matmul used before), one thread, in double and float, for the shapes the other benchmarks
// multiply: square, tall-skinny (the GMM's loop over components), the MLP's forward product and its two backward
// products (small inner extent), and a product of rank-k updates?
// BM_Matmul prints metagrad's GFLOP/s; BM_EigenOverMetagrad times Eigen's product alternately with matmul and prints
// Eigen's time / metagrad's. Built where OpenBLAS's CBLAS is installed (libopenblas-openmp-dev or libopenblas-dev;
// never a library dependency), BM_OpenBlasOverMetagrad times cblas_?gemm alternately with matmul on the same operands
// and prints OpenBLAS's time / metagrad's (goal: >= 1.0, metagrad at least as fast), both rates, and the largest
// relative difference of the products. Run with OMP_NUM_THREADS=1 (the benchmark also sets one thread);
// OPENBLAS_VERBOSE=2 names the kernel OpenBLAS picked, OPENBLAS_CORETYPE picks another.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "alternating.hpp"
#include "metagrad/metagrad.hpp"
#include "threads.hpp"
#ifdef METAGRAD_BENCH_WITH_OPENBLAS
#include <cblas.h>
#endif

namespace {

using metagrad::index_t;

/// op(A) · op(B) with op(A) of shape [m, k] and op(B) of shape [k, n].
struct Product {
  const char* name;
  index_t m, k, n;
  bool transpose_a, transpose_b;
};

const std::vector<Product> products = {
    {"square 256", 256, 256, 256, false, false},
    {"square 1024", 1024, 1024, 1024, false, false},
    {"tall-skinny [10000,64]·[64,64] (GMM loop)", 10000, 64, 64, false, false},
    {"MLP forward X·W1 [128,784]·[784,256]", 128, 784, 256, false, false},
    {"MLP backward Xᵀ·G [784,128]·[128,256]", 784, 128, 256, true, false},
    {"MLP backward G·W1ᵀ [128,256]·[256,784]", 128, 256, 784, false, true},
    {"small inner extent [2048,16]·[16,2048]", 2048, 16, 2048, false, false},
};

template <class T> struct Operands {
  metagrad::Tensor<T> a, b;
  explicit Operands(const Product& p)
      : a(metagrad::Tensor<T>::random_normal(p.transpose_a ? metagrad::Shape{p.k, p.m} : metagrad::Shape{p.m, p.k}, 1)),
        b(metagrad::Tensor<T>::random_normal(p.transpose_b ? metagrad::Shape{p.n, p.k} : metagrad::Shape{p.k, p.n},
                                             2)) {}
  metagrad::Tensor<T> product(const Product& p) const { return matmul(a, b, p.transpose_a, p.transpose_b); }
};

double gflop(const Product& p) { return 2.0 * static_cast<double>(p.m * p.k * p.n) / 1e9; }

template <class T> void BM_Matmul(benchmark::State& state) {
  const Product& p = products[static_cast<std::size_t>(state.range(0))];
  const Operands<T> x(p);
  for (auto _ : state) benchmark::DoNotOptimize(x.product(p));
  state.counters["GFLOP/s"] = benchmark::Counter(gflop(p), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(p.name);
}

template <class T> void BM_EigenOverMetagrad(benchmark::State& state) {
  const Product& p = products[static_cast<std::size_t>(state.range(0))];
  const Operands<T> x(p);
  const auto eigen = [&] {  // Eigen's general product on the same row-major maps, into a fresh output
    metagrad::Tensor<T> c = metagrad::Tensor<T>::uninitialized(metagrad::Shape{p.m, p.n});
    const auto a = x.a.matrix();
    const auto b = x.b.matrix();
    auto out = c.matrix();
    if (!p.transpose_a && !p.transpose_b) out.noalias() = a * b;
    else if (p.transpose_a && !p.transpose_b) out.noalias() = a.transpose() * b;
    else if (!p.transpose_a && p.transpose_b) out.noalias() = a * b.transpose();
    else out.noalias() = a.transpose() * b.transpose();
    return c;
  };
  bench::time_alternately(state, "eigen", eigen, "metagrad", [&] { return x.product(p); });
  state.SetLabel(p.name);
}

#ifdef METAGRAD_BENCH_WITH_OPENBLAS
template <class T> void BM_OpenBlasOverMetagrad(benchmark::State& state) {
  const Product& p = products[static_cast<std::size_t>(state.range(0))];
  openblas_set_num_threads(bench::threads);
  const Operands<T> x(p);
  const auto openblas = [&] {  // into a fresh output, as matmul does (both reuse cached memory of that size)
    metagrad::Tensor<T> c = metagrad::Tensor<T>::uninitialized(metagrad::Shape{p.m, p.n});
    const auto ta = p.transpose_a ? CblasTrans : CblasNoTrans, tb = p.transpose_b ? CblasTrans : CblasNoTrans;
    const auto lda = static_cast<int>(x.a.shape()[1]), ldb = static_cast<int>(x.b.shape()[1]);
    const auto m = static_cast<int>(p.m), n = static_cast<int>(p.n), k = static_cast<int>(p.k);
    if constexpr (std::is_same_v<T, double>)
      cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, x.a.data(), lda, x.b.data(), ldb, 0.0, c.data(), n);
    else
      cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, x.a.data(), lda, x.b.data(), ldb, 0.0f, c.data(), n);
    return c;
  };
  const metagrad::Tensor<T> ours = x.product(p), theirs = openblas();
  const double scale = static_cast<double>(ours.array().abs().maxCoeff());
  state.counters["max_rel_diff"] = static_cast<double>((ours.array() - theirs.array()).abs().maxCoeff()) / scale;
  bench::time_alternately(state, "openblas", openblas, "metagrad", [&] { return x.product(p); });
  state.counters["metagrad_GFLOP/s"] = gflop(p) / (state.counters["metagrad_ms"] / 1e3);
  state.counters["openblas_GFLOP/s"] = gflop(p) / (state.counters["openblas_ms"] / 1e3);
  state.SetLabel(p.name);
}
#endif

void all_products(benchmark::internal::Benchmark* b) {
  for (std::size_t i = 0; i < products.size(); ++i) b->Arg(static_cast<int64_t>(i));
}

}  // namespace

BENCHMARK(BM_Matmul<double>)->Apply(all_products)->Unit(benchmark::kMillisecond)->MinTime(0.3);
BENCHMARK(BM_Matmul<float>)->Apply(all_products)->Unit(benchmark::kMillisecond)->MinTime(0.3);
BENCHMARK(BM_EigenOverMetagrad<double>)->Apply(all_products)->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_EigenOverMetagrad<float>)->Apply(all_products)->Unit(benchmark::kMillisecond)->MinTime(0.5);
#ifdef METAGRAD_BENCH_WITH_OPENBLAS
BENCHMARK(BM_OpenBlasOverMetagrad<double>)->Apply(all_products)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_OpenBlasOverMetagrad<float>)->Apply(all_products)->Unit(benchmark::kMillisecond)->MinTime(1.0);
#endif
BENCHMARK_MAIN();
