#pragma once
// Checkpoint policies: which states of a training run to keep, and when to replay, so that the steps can be
// reversed T−1, …, 0 — the order a metagradient needs them in. A policy only decides; the engine (metagradient.hpp)
// and the plan counter below carry its decisions out through seven primitives on a store of checkpoints, one
// working state and a stack of recorded steps:
//   restore(t)  working := a copy of checkpoint t          take(t)   working := checkpoint t, which is dropped
//   advance(t)  replay plain training steps up to step t     store()   checkpoint the working state
//   record()    record the working state's step on the tape and keep it; working := the step's result
//   reverse()   the step-VJP of the last recorded step (dropping its tape), or else of step `working` (consuming it)
//   release(t)  drop checkpoint t
// Every policy starts with checkpoint 0 (the initial state) stored and ends with the store empty. The policies give
// the same metagradient to the last bit: they differ only in memory (checkpoints and recorded steps held at once)
// and time (replayed steps), and `checkpoint_plan(policy, steps)` reports both before anything runs.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <variant>

#include "metagrad/error.hpp"

namespace metagrad {

/// What a policy costs for a run of `steps` steps: the most checkpoints stored at once (the initial state included;
/// the one working state is not) and the plain training steps replayed (the steps reversed are always `steps`).
struct CheckpointPlan {
  std::int64_t steps = 0;           ///< The steps of the run.
  std::int64_t stored_states = 0;   ///< The most checkpoints stored at once.
  std::int64_t replayed_steps = 0;  ///< Plain steps computed again.
  /// The most steps recorded and kept on the tape at once (RecordAll: all of them), each with every intermediate value
  /// its step-VJP needs: far more memory than a stored state.
  std::int64_t recorded_steps = 0;
  friend bool operator==(const CheckpointPlan&, const CheckpointPlan&) = default;  ///< Every count equal.
};

namespace meta_detail {

inline void check_steps(const char* who, std::int64_t steps) {
  if (steps < 1) throw value_error(std::string(who) + ": " + std::to_string(steps) + " steps (at least 1 expected)");
}

/// Carries out a schedule without running anything, counting what it would cost.
class PlanCounter {
 public:
  explicit PlanCounter(std::int64_t steps) : plan_{steps, 1, 0}, stored_(1) {}
  void restore(std::int64_t t) { working_ = t; }
  void take(std::int64_t t) { working_ = t, --stored_; }
  void advance(std::int64_t t) { plan_.replayed_steps += t - working_, working_ = t; }
  void store() { plan_.stored_states = std::max(plan_.stored_states, ++stored_); }
  void record() { ++working_, plan_.recorded_steps = std::max(plan_.recorded_steps, ++recorded_); }
  void reverse() {
    if (recorded_ > 0) --recorded_;
  }
  void release(std::int64_t) { --stored_; }
  CheckpointPlan plan() const { return plan_; }

 private:
  CheckpointPlan plan_;
  std::int64_t stored_ = 0, working_ = 0, recorded_ = 0;
};

/// C(s + r, s), the number of steps s checkpoints can reverse with r replays of each step; saturates above `cap`.
inline std::int64_t binomial_reach(std::int64_t s, std::int64_t r, std::int64_t cap) {
  std::int64_t b = 1;
  for (std::int64_t i = 1; i <= r && b <= cap; ++i) b = b * (s + i) / i;  // C(s+i, i) = C(s+i−1, i−1)·(s+i)/i, exact
  return b;
}

}  // namespace meta_detail

/// Keep every state: T checkpoints, no replay beyond the first pass. Fastest; memory grows with T.
struct StoreAll {
  /// Runs the policy's schedule of checkpoint operations for a run of steps steps on ex.
  template <class Exec>
  void schedule(std::int64_t steps, Exec& ex) const {
    meta_detail::check_steps("StoreAll", steps);
    ex.restore(0);
    for (std::int64_t t = 1; t < steps; ++t) {
      ex.advance(t);
      ex.store();
    }
    for (std::int64_t t = steps; t-- > 0;) {
      ex.take(t);
      ex.reverse();
    }
  }
};

/// Record every step on the tape in the first pass and keep it: no step is computed twice (StoreAll computes each
/// step plainly, then again on the tape to reverse it), at the price of holding every step's intermediate values at
/// once. For short runs whose steps are costly: a learned optimizer's unroll.
struct RecordAll {
  /// Runs the policy's schedule of checkpoint operations for a run of steps steps on ex.
  template <class Exec>
  void schedule(std::int64_t steps, Exec& ex) const {
    meta_detail::check_steps("RecordAll", steps);
    ex.take(0);
    for (std::int64_t t = 0; t < steps; ++t) ex.record();
    for (std::int64_t t = 0; t < steps; ++t) ex.reverse();
  }
};

/// REPLAY (Engstrom et al. 2025): a lazy k-ary tree. Split the steps into k segments, keep each segment's start state,
/// and recurse into the segments last first; a segment of at most k steps has its states stored and reversed.
/// At most 1 + (k−1)·⌈log_k T⌉ checkpoints, and about T·(1 − 1/k)·⌈log_k T⌉ replayed steps.
struct Replay {
  std::int64_t branching = 2;  ///< k, the segments each level splits into (at least 2)

  /// Runs the policy's schedule of checkpoint operations for a run of steps steps on ex.
  template <class Exec>
  void schedule(std::int64_t steps, Exec& ex) const {
    meta_detail::check_steps("Replay", steps);
    if (branching < 2) throw value_error("Replay: branching factor " + std::to_string(branching) + " (at least 2 expected)");
    segment(0, steps, true, ex);
  }

 private:
  /// Reverses steps [lo, hi) from checkpoint lo; `owned`: the checkpoint is not needed afterwards and is consumed.
  template <class Exec>
  void segment(std::int64_t lo, std::int64_t hi, bool owned, Exec& ex) const {
    const std::int64_t k = branching, length = hi - lo;
    if (length <= k) {
      ex.restore(lo);
      for (std::int64_t t = lo + 1; t < hi; ++t) {
        ex.advance(t);
        ex.store();
      }
      for (std::int64_t t = hi - 1; t > lo; --t) {
        ex.take(t);
        ex.reverse();
      }
      owned ? ex.take(lo) : ex.restore(lo);
      ex.reverse();
      return;
    }
    const auto bound = [&](std::int64_t j) { return lo + j * length / k; };
    ex.restore(lo);
    for (std::int64_t j = 1; j < k; ++j) {
      ex.advance(bound(j));
      ex.store();
    }
    for (std::int64_t j = k; j-- > 0;) segment(bound(j), bound(j + 1), j > 0 || owned, ex);
  }
};

/// Optimal binomial checkpointing (Griewank & Walther's revolve): for a given number of checkpoint slots (the
/// initial state's included), the fewest replayed steps of any schedule — r·T − C(s + r, r − 1) for s slots, with r
/// the smallest integer such that C(s + r, s) ≥ T.
struct Revolve {
  std::int64_t slots = 8;  ///< Checkpoints held at once, the initial state's included (at least 1).

  /// Runs the policy's schedule of checkpoint operations for a run of steps steps on ex.
  template <class Exec>
  void schedule(std::int64_t steps, Exec& ex) const {
    meta_detail::check_steps("Revolve", steps);
    if (slots < 1) throw value_error("Revolve: " + std::to_string(slots) + " checkpoint slots (at least 1 expected)");
    segment(0, steps, slots, true, ex);
  }

  /// The fewest replayed steps that reverse `length` steps from a stored start with `s` slots (the start's included).
  static std::int64_t optimal_replays(std::int64_t length, std::int64_t s) {
    if (length <= 1) return 0;
    std::int64_t r = 0;
    while (meta_detail::binomial_reach(s, r, length) < length) ++r;
    // C(s + r, r − 1) = C(s + r, r) · r / (s + 1); C(s + r, r) < length · (s + r) here, so nothing overflows.
    return r * length - meta_detail::binomial_reach(s, r, std::numeric_limits<std::int64_t>::max()) * r / (s + 1);
  }

 private:
  /// Where to place the next checkpoint in a segment of `length` steps with `s` ≥ 2 slots: the m minimizing
  /// m + optimal(length − m, s − 1) + optimal(m, s), a convex function of m, found by bisection on its slope.
  static std::int64_t split(std::int64_t length, std::int64_t s) {
    const auto cost = [&](std::int64_t m) { return m + optimal_replays(length - m, s - 1) + optimal_replays(m, s); };
    std::int64_t lo = 1, hi = length - 1;
    while (lo < hi) {
      const std::int64_t mid = lo + (hi - lo) / 2;
      if (cost(mid + 1) < cost(mid)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  template <class Exec>
  void segment(std::int64_t lo, std::int64_t hi, std::int64_t s, bool owned, Exec& ex) const {
    const std::int64_t length = hi - lo;
    if (length > 1 && s == 1) {  // one slot: replay from the start for every step
      for (std::int64_t t = hi - 1; t > lo; --t) {
        ex.restore(lo);
        ex.advance(t);
        ex.reverse();
      }
    } else if (length > 1) {
      const std::int64_t m = lo + split(length, s);
      ex.restore(lo);
      ex.advance(m);
      ex.store();
      segment(m, hi, s - 1, true, ex);
      segment(lo, m, s, owned, ex);
      return;
    }
    owned ? ex.take(lo) : ex.restore(lo);
    ex.reverse();
  }
};

/// A checkpoint policy: `schedule(steps, executor)` drives the executor's primitives (restore, take, advance, store,
/// record, reverse, release), the same for the engine that runs it and for the counter that plans it.
template <class P>
concept CheckpointPolicy = requires(const P& policy, std::int64_t steps, meta_detail::PlanCounter& counter) {
  policy.schedule(steps, counter);
};

/// What `policy` costs for a run of `steps` steps, before anything runs: its schedule carried out without training.
template <CheckpointPolicy P>
CheckpointPlan checkpoint_plan(const P& policy, std::int64_t steps) {
  meta_detail::PlanCounter counter(steps);
  policy.schedule(steps, counter);
  return counter.plan();
}
/// The plan of a policy chosen at run time.
template <CheckpointPolicy... P>
CheckpointPlan checkpoint_plan(const std::variant<P...>& policy, std::int64_t steps) {
  return std::visit([&](const auto& chosen) { return checkpoint_plan(chosen, steps); }, policy);
}

}  // namespace metagrad
