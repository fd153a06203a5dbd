#pragma once
// A training run as a value: what `metagradient` differentiates. A run is a type with
//   using value_type = double;                                    the number type
//   template <class C> using State = …;                          parameters + optimizer state, a tree (see state.hpp)
//   template <class C> using Meta = …;                           the metaparameters, any tree of tensors (optional:
//                                                                 std::vector<C> when the run does not say)
//   Meta<Shape> metaparameter_shapes(std::int64_t steps)          the shapes the metaparameters must have (messages
//                                                                 name a metaparameter by its path in Meta)
//   State<C> init(const Meta<C>& meta)                             the initial state
//   StepResult<State<C>, C> step(std::int64_t t, State<C>, const Meta<C>& meta)   training step t
//   C objective(const State<C>& final_state, const Meta<C>& meta)                  e.g. validation loss
// each a template over the carrier C (Tensor<value_type> or Var<value_type>), so one definition trains fast on plain
// tensors and is recorded on a tape when a step is differentiated. Step t must be a pure function of (t, state, meta):
// its batch and every random draw come from a seed and t (BatchOrder), never from state kept in the run object.
// Independent runs of one run object may go on several threads at once (metasmoothness runs its three in parallel, and
// for_each_run a grid's), so its const member functions must not change shared state. A run whose steps must not run
// concurrently (its steps talk to other MPI ranks, which must see the same collectives in the same order) says so with
// an optional
//   bool parallel_runs() const                                    false: independent runs go one after another
#include <concepts>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "metagrad/autodiff/grad.hpp"
#include "metagrad/autodiff/index.hpp"
#include "metagrad/optim/update_rule.hpp"
#include "metagrad/threads.hpp"

namespace metagrad {

/// What a training step returns: the next state and this step's training loss (rank 0).
template <class State, class C>
struct StepResult {
  State state;  ///< The state after the step.
  C loss;       ///< The step's training loss, rank 0.
};

namespace meta_detail {
template <class R, class C>
struct meta_of {
  using type = std::vector<C>;
};
template <class R, class C>
  requires requires { typename R::template Meta<C>; }
struct meta_of<R, C> {
  using type = typename R::template Meta<C>;
};
}  // namespace meta_detail

/// A run's metaparameters on carrier C: its Meta<C> when it declares one, else std::vector<C>.
template <class Run, class C>
using meta_t = typename meta_detail::meta_of<Run, C>::type;

template <class R>
concept TrainingRun = requires(const R& run, std::int64_t t, const meta_t<R, Tensor<typename R::value_type>>& plain,
                               const meta_t<R, Var<typename R::value_type>>& taped,
                               typename R::template State<Tensor<typename R::value_type>> plain_state,
                               typename R::template State<Var<typename R::value_type>> taped_state) {
  { run.metaparameter_shapes(t) } -> std::same_as<meta_t<R, Shape>>;
  { run.init(plain) } -> std::same_as<decltype(plain_state)>;
  { run.init(taped) } -> std::same_as<decltype(taped_state)>;
  { run.step(t, std::move(plain_state), plain) } -> std::same_as<StepResult<decltype(plain_state), Tensor<typename R::value_type>>>;
  { run.step(t, std::move(taped_state), taped) } -> std::same_as<StepResult<decltype(taped_state), Var<typename R::value_type>>>;
  { run.objective(plain_state, plain) } -> std::same_as<Tensor<typename R::value_type>>;
  { run.objective(taped_state, taped) } -> std::same_as<Var<typename R::value_type>>;
};

namespace meta_detail {
template <class C> inline constexpr bool is_var = false;
template <class T> inline constexpr bool is_var<Var<T>> = true;
}  // namespace meta_detail

/// Whether independent runs of `run` may go on several threads at once: its parallel_runs() when it declares one,
/// else true (see the top of this file).
template <class Run>
bool parallel_runs(const Run& run) {
  if constexpr (requires { { run.parallel_runs() } -> std::convertible_to<bool>; }) return run.parallel_runs();
  else return true;
}

/// Runs task(i) for i = 0 … count − 1 — independent runs of `run`, such as a grid's configurations — on metagrad's
/// threads when parallel_runs(run), else one after another; the lowest-numbered failing task's exception is rethrown.
template <class Run, class Task>
void for_each_run(const Run& run, std::int64_t count, Task&& task) {
  if (parallel_runs(run)) {
    parallel_for(count, task);
  } else {
    for (std::int64_t i = 0; i < count; ++i) task(i);
  }
}

/// The hyperparameter type that goes with carrier C: the plain number on Tensors, Var on a tape — so a rule built
/// inside a step, `Momentum<hyper_t<C>>{.momentum = scalar(meta[1])}`, is the fused plain rule or the taped one.
template <class C>
using hyper_t = std::conditional_t<meta_detail::is_var<C>, C, typename C::value_type>;

/// A one-element metaparameter as a hyperparameter: its number on Tensors, itself (rank 0) on a tape.
template <class C>
hyper_t<C> scalar(const C& x) {
  if (x.shape().size() != 1) throw shape_error("scalar: a one-element tensor expected, got shape " + x.shape().str());
  if constexpr (meta_detail::is_var<C>) return x.shape().rank() == 0 ? x : reshape(x, Shape{});
  else return x.item();
}

/// Tensors a run uses but does not differentiate (initial parameters drawn from a seed, fixed data), in the carrier
/// of the metaparameters `meta`: themselves on plain tensors; constants on the metaparameters' tape on Vars.
template <class Meta, class C = tree_leaf_t<Meta>>
ParamList<C> as_constants(const ParamList<Tensor<typename C::value_type>>& values, const Meta& meta) {
  if constexpr (meta_detail::is_var<C>) {
    Tape<typename C::value_type>* tape = nullptr;
    tree_for_each([&](const TreePath&, const auto& leaf) {
      if constexpr (meta_detail::is_var<std::remove_cvref_t<decltype(leaf)>>) tape = tape ? tape : &leaf.tape();
    }, meta);
    if (!tape) throw value_error("as_constants: a run without metaparameters has nothing to differentiate");
    ParamList<C> out;
    for (const auto& v : values) out.push_back(tape->constant(v));
    return out;
  } else {
    return values;
  }
}

/// The training loss and its gradient with respect to `params`, for either carrier: `loss_fn(vars)` receives the
/// parameters as Vars and returns a rank-0 Var. On plain tensors the gradient is first-order on a scratch tape; on a
/// tape it is recorded (create_graph), so the step that uses it can be differentiated.
template <class T, class LossFn>
std::pair<Tensor<T>, ParamList<Tensor<T>>> loss_and_gradient(const ParamList<Tensor<T>>& params, LossFn&& loss_fn) {
  thread_local Tape<T> tape;
  const TapeScope<T> scratch(tape);
  std::vector<Var<T>> vars;
  vars.reserve(params.size());
  for (const auto& p : params) vars.push_back(tape.variable(p));
  const Var<T> loss = loss_fn(vars);
  return {loss.value(), grad(loss, vars)};
}
/// The same on a tape: the gradient is recorded (create_graph), so the step can be differentiated.
template <class T, class LossFn>
std::pair<Var<T>, ParamList<Var<T>>> loss_and_gradient(const ParamList<Var<T>>& params, LossFn&& loss_fn) {
  const Var<T> loss = loss_fn(params);
  return {loss, grad(loss, params, create_graph)};
}

/// Tag for loss_and_gradient: on a tape the gradient enters what follows as a constant, so a metagradient through the
/// step drops the loss's second derivatives (the learned-optimizer paper meta-trains this way); the loss itself stays
/// differentiable. On plain tensors it changes nothing.
struct without_second_derivatives_t {
  explicit without_second_derivatives_t() = default;
};
/// Pass to loss_and_gradient to drop second derivatives.
inline constexpr without_second_derivatives_t without_second_derivatives{};

/// On plain tensors the tag changes nothing.
template <class T, class LossFn>
std::pair<Tensor<T>, ParamList<Tensor<T>>> loss_and_gradient(const ParamList<Tensor<T>>& params, LossFn&& loss_fn,
                                                             without_second_derivatives_t) {
  return loss_and_gradient(params, std::forward<LossFn>(loss_fn));
}
/// On a tape: the gradient enters as constants, so a metagradient drops the loss's second derivatives.
template <class T, class LossFn>
std::pair<Var<T>, ParamList<Var<T>>> loss_and_gradient(const ParamList<Var<T>>& params, LossFn&& loss_fn,
                                                       without_second_derivatives_t) {
  const Var<T> loss = loss_fn(params);
  ParamList<Var<T>> constants;
  for (auto& g : grad(loss, params)) constants.push_back(loss.tape().constant(std::move(g)));
  return {loss, std::move(constants)};
}

}  // namespace metagrad
