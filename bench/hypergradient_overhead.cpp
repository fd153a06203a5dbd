// Question: what does a hypergradient step size cost? One SGD-HD and one Adam-HD step against one SGD and one Adam
// step at a fixed step size, each including the gradient of the MLP 784-256-10 (batch 128, double).
// Goal: HD / fixed <= 1.05.
#include "alternating.hpp"
#include "mlp.hpp"
#include "threads.hpp"

namespace {

template <class Fixed, class Hyper>
void ratio(benchmark::State& state, const Fixed& fixed, const Hyper& hyper) {
  const bench::Problem pb;
  bench::TapeModel model(pb);
  auto fixed_params = pb.params, hyper_params = pb.params;
  auto fixed_state = fixed.init(fixed_params);
  auto hyper_state = hyper.init(hyper_params);
  auto step = [&](const auto& opt, auto& params, auto& s) {
    auto g = bench::tape_gradient(model, pb);
    std::tie(params, s) = opt.step(std::move(params), g, std::move(s));
    return params[0].data()[0];
  };
  bench::time_alternately(state, "hd", [&] { return step(hyper, hyper_params, hyper_state); }, "fixed",
                          [&] { return step(fixed, fixed_params, fixed_state); });
}

void BM_SgdHdOverSgd(benchmark::State& state) {
  using namespace metagrad;
  ratio(state, chain(Sgd<>{}, ConstantStepSize<>{1e-3}), chain(Sgd<>{}, HypergradientStepSize<>{.initial = 1e-3, .beta = 1e-3}));
}

void BM_AdamHdOverAdam(benchmark::State& state) {
  using namespace metagrad;
  ratio(state, chain(Adam<>{}, ConstantStepSize<>{1e-3}), chain(Adam<>{}, HypergradientStepSize<>{.initial = 1e-3, .beta = 1e-7}));
}

}  // namespace

BENCHMARK(BM_SgdHdOverSgd)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK(BM_AdamHdOverAdam)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK_MAIN();
