#pragma once
// How metasmooth a training setup is (Engstrom et al. 2025, PAPERS.md §3): whether small moves of the
// metaparameters move the trained state consistently, so that metagradients are worth following. Three training
// runs at z, z + h·v and z + 2h·v give final states θ₀, θ_h, θ_2h; with d = |θ_2h − θ₀|,
//   S = sign(θ_h − θ₀)ᵀ diag(d / ‖d‖₁) sign(θ_2h − θ_h)   in [−1, 1]:
// 1 when every coordinate keeps moving the same way (the outcome is locally linear in z), about 0 or below when
// the trajectory reacts chaotically. θ is every tensor of the final state (parameters and optimizer state).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "metagrad/meta/metagradient.hpp"
#include "metagrad/threads.hpp"

namespace metagrad {

/// The final state of `run` after `steps` plain training steps from `meta`.
template <TrainingRun Run>
typename Run::template State<Tensor<typename Run::value_type>> run_final_state(const Run& run,
                                                                               const meta_t<Run, Tensor<typename Run::value_type>>& meta,
                                                                               std::int64_t steps) {
  meta_detail::check_steps("run_final_state", steps);
  meta_detail::check_metaparameters("run_final_state", run, meta, steps);
  auto state = run.init(meta);
  for (std::int64_t t = 0; t < steps; ++t) state = run.step(t, std::move(state), meta).state;
  return state;
}

/// The metasmoothness score S of `run` at `meta` along `direction` (a tree of the metaparameters' structure and
/// shapes) with step `h`.
template <TrainingRun Run>
double metasmoothness(const Run& run, const meta_t<Run, Tensor<typename Run::value_type>>& meta,
                      const meta_t<Run, Tensor<typename Run::value_type>>& direction, typename Run::value_type h, std::int64_t steps) {
  using T = typename Run::value_type;
  if (!(h > 0) || !std::isfinite(h)) throw value_error("metasmoothness: step h = " + std::to_string(h) + " (positive expected)");
  std::vector<meta_t<Run, Tensor<T>>> points;
  for (int k = 0; k < 3; ++k) {
    auto moved = meta;
    tree_detail::walk<false>("metasmoothness: the direction", TreePath(), [&](const TreePath& path, Tensor<T>& m, const Tensor<T>& d) {
      if (!(d.shape() == m.shape()))
        throw shape_error("metasmoothness: the direction's " + path.str() + " has shape " + d.shape().str() + ", its metaparameter " +
                          m.shape().str());
      m.array() += (static_cast<T>(k) * h) * d.array();
    }, moved, direction);
    points.push_back(std::move(moved));
  }
  // The three runs on metagrad's threads (each records on its own thread's tape; see threads.hpp), unless the run says
  // its runs must go one after another.
  std::vector<std::vector<Tensor<T>>> finals(3);
  for_each_run(run, 3, [&](std::int64_t k) {
    finals[static_cast<std::size_t>(k)] = tree_flatten(run_final_state(run, points[static_cast<std::size_t>(k)], steps));
  });
  const auto sign = [](T x) { return static_cast<double>((x > 0) - (x < 0)); };
  double weighted = 0, total = 0;
  for (std::size_t i = 0; i < finals[0].size(); ++i) {
    const T* a = finals[0][i].data();
    const T* b = finals[1][i].data();
    const T* c = finals[2][i].data();
    for (index_t e = 0; e < finals[0][i].size(); ++e) {
      const double d = std::abs(static_cast<double>(c[e] - a[e]));
      weighted += d * sign(b[e] - a[e]) * sign(c[e] - b[e]);
      total += d;
    }
  }
  if (!std::isfinite(weighted) || !std::isfinite(total))
    throw training_error("metasmoothness: a training run diverged (non-finite final state)");
  return total > 0 ? weighted / total : 0.0;
}

}  // namespace metagrad
