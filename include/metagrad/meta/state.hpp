#pragma once
// A training run's state — model parameters plus optimizer state — as the metagradient engine sees it. A state is
// a struct templated on the carrier C whose `fields(f)` calls f(name, field) for every member, each a ParamList<C>,
// a C, or a std::int64_t counter (an update rule's State already is one). The engine copies states as plain tensors,
// re-creates them on a tape as variables, and lists their tensors in the order fields() visits them.
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "metagrad/autodiff/tape.hpp"
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// The state of a training run written with one update rule: parameters and the rule's state.
template <class C, class OptimizerState>
struct TrainingState {
  ParamList<C> params;
  OptimizerState optimizer;

  template <class F> void fields(F&& f) { visit(*this, f); }
  template <class F> void fields(F&& f) const { visit(*this, f); }

 private:
  template <class Self, class F>
  static void visit(Self& self, F& f) {
    f("params", self.params);
    self.optimizer.fields([&](const std::string& name, auto& value) { f("optimizer." + name, value); });
  }
};

namespace meta_detail {

template <class C> inline constexpr bool is_param_list = false;
template <class C> inline constexpr bool is_param_list<std::vector<C>> = true;

/// Every tensor of a state (Tensors or Vars), in fields() order.
template <class C, class State>
std::vector<C> state_tensors(const State& state) {
  std::vector<C> out;
  state.fields([&](const std::string&, const auto& value) {
    using F = std::decay_t<decltype(value)>;
    if constexpr (std::is_same_v<F, C>) out.push_back(value);
    else if constexpr (is_param_list<F>) out.insert(out.end(), value.begin(), value.end());
    else static_assert(std::is_same_v<F, std::int64_t>, "a state's fields are ParamList<C>, C or std::int64_t");
  });
  return out;
}

/// Sets a plain state's tensors to `tensors`, given in fields() order as state_tensors lists them (counters stay).
template <class T, class PlainState>
void set_state_tensors(PlainState& state, std::vector<Tensor<T>> tensors) {
  std::size_t next = 0;
  const auto take = [&](Tensor<T>& target) {
    if (next >= tensors.size() || !(tensors[next].shape() == target.shape()))
      throw shape_error("set_state_tensors: tensor " + std::to_string(next) + " of " + std::to_string(tensors.size()) +
                        (next < tensors.size() ? " has shape " + tensors[next].shape().str() : std::string(" is missing")) +
                        ", the state's has " + target.shape().str());
    target = std::move(tensors[next++]);
  };
  PlainState updated = state;
  updated.fields([&](const std::string&, auto& value) {
    using F = std::decay_t<decltype(value)>;
    if constexpr (std::is_same_v<F, Tensor<T>>) take(value);
    else if constexpr (is_param_list<F>) for (auto& t : value) take(t);
  });
  if (next != tensors.size())
    throw shape_error("set_state_tensors: " + std::to_string(tensors.size()) + " tensors for a state of " + std::to_string(next));
  state = std::move(updated);
}

/// The names of a state's tensors, in fields() order ("params[2]", "optimizer.velocity[0]").
template <class State>
std::vector<std::string> state_tensor_names(const State& state) {
  std::vector<std::string> out;
  state.fields([&](const std::string& name, const auto& value) {
    using F = std::decay_t<decltype(value)>;
    if constexpr (is_param_list<F>) {
      for (std::size_t i = 0; i < value.size(); ++i) out.push_back(name + "[" + std::to_string(i) + "]");
    } else if constexpr (!std::is_same_v<F, std::int64_t>) {
      out.push_back(name);
    }
  });
  return out;
}

/// `from` as a state of another carrier: each tensor through `convert` (in fields() order), the list lengths and
/// counters as they are.
template <class To, class Element, class From, class Convert>
To convert_state(From& from, Convert&& convert) {
  std::vector<Element> elements;
  std::vector<std::int64_t> counters;
  std::vector<std::size_t> list_sizes;
  from.fields([&](const std::string&, auto& value) {
    using F = std::decay_t<decltype(value)>;
    if constexpr (is_param_list<F>) {
      list_sizes.push_back(value.size());
      for (auto& t : value) elements.push_back(convert(t));
    } else if constexpr (std::is_same_v<F, std::int64_t>) {
      counters.push_back(value);
    } else {
      elements.push_back(convert(value));
    }
  });
  To out{};
  std::size_t element = 0, counter = 0, list = 0;
  out.fields([&](const std::string&, auto& value) {
    using F = std::decay_t<decltype(value)>;
    if constexpr (std::is_same_v<F, Element>) {
      value = std::move(elements[element++]);
    } else if constexpr (is_param_list<F>) {
      value.clear();
      for (std::size_t i = 0; i < list_sizes[list]; ++i) value.push_back(std::move(elements[element++]));
      ++list;
    } else {
      value = counters[counter++];
    }
  });
  return out;
}

/// The plain state `plain`, moved onto `tape` as variables: the Var state, and its variables in fields() order.
template <class VarState, class T, class PlainState>
VarState state_on_tape(Tape<T>& tape, PlainState plain, std::vector<Var<T>>& variables) {
  return convert_state<VarState, Var<T>>(plain, [&](Tensor<T>& t) {
    variables.push_back(tape.variable(std::move(t)));
    return variables.back();
  });
}

/// A Var state's values as a plain state (copies of the tensors; the counters as they are).
template <class T, class PlainState, class VarState>
PlainState state_values(const VarState& taped) {
  return convert_state<PlainState, Tensor<T>>(taped, [](const Var<T>& v) { return v.value(); });
}

/// A 64-bit hash of a plain state's bits (shapes, values and counters): equal states hash equal, and a replay that
/// differs in any bit almost surely does not. Four independent lanes, so hashing runs at memory speed.
template <class T, class PlainState>
std::uint64_t state_hash(const PlainState& state) {
  constexpr std::uint64_t prime = 0x100000001b3ull;
  std::uint64_t h[4] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull, 0x9E3779B97F4A7C15ull, 0xBF58476D1CE4E5B9ull};
  const auto mix = [&](std::uint64_t& lane, std::uint64_t x) { lane = (lane ^ x) * prime; };
  const auto tensor = [&](const Tensor<T>& t) {
    for (int d = 0; d < t.rank(); ++d) mix(h[0], static_cast<std::uint64_t>(t.shape()[d]));
    const auto* bytes = reinterpret_cast<const unsigned char*>(t.data());
    const std::size_t n = static_cast<std::size_t>(t.size()) * sizeof(T);
    std::size_t i = 0;
    for (std::uint64_t w[4]; i + sizeof w <= n; i += sizeof w) {
      std::memcpy(w, bytes + i, sizeof w);
      for (int k = 0; k < 4; ++k) mix(h[k], w[k]);
    }
    for (; i < n; ++i) mix(h[0], bytes[i]);
  };
  state.fields([&](const std::string&, const auto& value) {
    using F = std::decay_t<decltype(value)>;
    if constexpr (std::is_same_v<F, Tensor<T>>) tensor(value);
    else if constexpr (is_param_list<F>) for (const auto& t : value) tensor(t);
    else mix(h[0], static_cast<std::uint64_t>(value));
  });
  std::uint64_t out = 0;
  for (std::uint64_t lane : h) out = (out ^ (lane ^ (lane >> 31))) * 0x94D049BB133111EBull;
  return out;
}

}  // namespace meta_detail

// A state's tensors as a list and back (MetagradientResult::final_state is such a list).
using meta_detail::set_state_tensors;
using meta_detail::state_tensors;
}  // namespace metagrad
