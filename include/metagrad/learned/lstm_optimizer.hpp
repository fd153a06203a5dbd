#pragma once
// The coordinatewise LSTM optimizer of "Learning to learn by gradient descent by gradient descent" (Andrychowicz et
// al. 2016): every coordinate of every parameter tensor is one row of a batch that runs through the same two-layer
// LSTM (weights shared across coordinates, a hidden and cell state per coordinate), whose linear output, times an
// output scale, is the coordinate's update: θ' = θ + scale · out. It is an update rule like any other —
// `direction(params, grads, state)` with d = −scale · out, to be taken with step size 1 — so it works with `chain`,
// `train()`, `save_state`, on plain tensors (applying a trained optimizer) and on Vars (meta-training, with the
// weights as metaparameters). All coordinates go through the LSTM together as batched matrix products.
//
// Beside the LSTM, a linear path from the features to the output (`output.skip`, zero in the paper's architecture)
// lets the learned rule start from a hand-designed one and learn a correction to it — the "nominal term" of later
// learned optimizers (Harrison et al. 2022): with the raw momenta among the features, `nesterov_skip` makes the
// optimizer, before meta-training, exactly Nesterov momentum.
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "metagrad/learned/preprocessing.hpp"
#include "metagrad/nn/lstm.hpp"
#include "metagrad/optim/update_rule.hpp"
#include "metagrad/tensor/random.hpp"

namespace metagrad {

/// Both layers' hidden and cell states, one row per coordinate ([coordinates, hidden] each), and the features' own
/// per-coordinate state ([coordinates, preprocessing.state_columns()]: the moments features' momenta, else empty).
template <class C>
struct LstmOptimizerState {
  C hidden1;   ///< Layer 1's hidden state.
  C cell1;     ///< Layer 1's cell state.
  C hidden2;   ///< Layer 2's hidden state.
  C cell2;     ///< Layer 2's cell state.
  C features;  ///< The features' per-coordinate state.
  METAGRAD_FIELDS(hidden1, cell1, hidden2, cell2, features)
};

/// The output layer beside the LSTM: out = h2 · weight + bias + features · skip.
template <class W>
struct LstmOutput {
  W weight;  ///< [H, 1]
  W bias;    ///< [1]
  W skip;    ///< [features, 1]: zero in the paper's architecture
  METAGRAD_FIELDS(weight, bias, skip)
};

/// Every weight of the LSTM optimizer, a tree: its paths ("layer1.input", "output.skip") name the weights in files and
/// messages, and meta-training takes it whole as the metaparameters.
template <class W>
struct LstmOptimizerWeights {
  LstmWeights<W> layer1;  ///< [features, 4H], [H, 4H], [4H]
  LstmWeights<W> layer2;  ///< [H, 4H], [H, 4H], [4H]
  LstmOutput<W> output;   ///< The output layer.
  METAGRAD_FIELDS(layer1, layer2, output)
};

/// The shapes of the weights for `hidden` units per layer and `features` input features.
inline LstmOptimizerWeights<Shape> lstm_optimizer_shapes(index_t hidden, index_t features) {
  const index_t h = hidden, g = 4 * hidden;
  return {{{features, g}, {h, g}, {g}}, {{h, g}, {h, g}, {g}}, {{h, 1}, {1}, {features, 1}}};
}

/// W is the weights' carrier: Tensor<T> to apply a trained optimizer, Var<T> to meta-train it.
template <class W = Tensor<double>>
struct LstmOptimizer {
  using T = typename W::value_type;                                      ///< The number type.
  LstmOptimizerWeights<W> weights;                                       ///< The weights, a tree.
  T output_scale = T(0.1);  ///< The update is output_scale times the network's output.
  GradientPreprocessing preprocessing = GradientPreprocessing::paper();  ///< The input features.

  template <class C>
  using State = LstmOptimizerState<C>;  ///< The LSTM's per-coordinate state on carrier C.

  /// A fresh optimizer of `hidden` units per layer: every weight and bias from U(−1/√hidden, 1/√hidden) (PyTorch's
  /// LSTM and Linear default), each tensor from its own stream of `seed`; no skip path (zero).
  static LstmOptimizer initial(index_t hidden, std::uint64_t seed, GradientPreprocessing preprocessing = GradientPreprocessing::paper())
    requires std::is_same_v<W, Tensor<T>>
  {
    if (hidden < 1) throw value_error("LstmOptimizer: " + std::to_string(hidden) + " hidden units (at least 1 expected)");
    SplitMix64 seeds(seed);
    const T bound = T(1) / std::sqrt(static_cast<T>(hidden));
    LstmOptimizer out;
    out.weights = tree_convert<LstmOptimizerWeights<W>>(lstm_optimizer_shapes(hidden, preprocessing.features()), [&](const Shape& shape) {
      return Tensor<T>::random_uniform(shape, seeds.next(), -bound, bound);  // in the tree's order
    });
    out.weights.output.skip.array() = 0;  // drawn last, so the other weights are as before the skip path existed
    out.preprocessing = preprocessing;
    return out;
  }

  index_t hidden() const { return weights.layer1.recurrent.shape()[0]; }  ///< Units per LSTM layer.

  /// The same optimizer with other weights (checked).
  template <class V>
  LstmOptimizer<V> with_weights(LstmOptimizerWeights<V> w) const {
    LstmOptimizer<V> out{std::move(w), output_scale, preprocessing};
    out.check();
    return out;
  }

  /// Throws unless the weights fit together (the preprocessing's features, H units in both layers, one output).
  void check() const {
    const index_t h = hidden(), f = preprocessing.features();
    tree_for_each([&](const TreePath& path, const Shape& expected, const W& w) {
      if (!(w.shape() == expected))
        throw shape_error("LstmOptimizer: " + path.str() + " has shape " + w.shape().str() + ", expected " + expected.str() + " for " +
                          std::to_string(h) + " hidden units and " + std::to_string(f) + " input features");
    }, lstm_optimizer_shapes(h, f), weights);
  }

  /// Sets the skip path to Nesterov momentum (μ = 0.9) at `learning_rate`, d = g + μ v' with v' = μ v + g, and the
  /// LSTM's output weights and bias to zero, so the optimizer is that rule until meta-training changes it. The raw
  /// features 10 · g and 10 · m_0.9 (m' = 0.9 m + 0.1 g = v' / 10) express it; other kinds throw.
  void nesterov_skip(T learning_rate)
    requires std::is_same_v<W, Tensor<T>>
  {
    if (preprocessing.kind != GradientPreprocessing::moments_and_raw)
      throw value_error("LstmOptimizer::nesterov_skip: needs the raw momenta among the features (GradientPreprocessing::moments_and_raw_momenta)");
    if (!(learning_rate > 0)) throw value_error("LstmOptimizer::nesterov_skip: learning rate " + std::to_string(learning_rate) + " (positive expected)");
    LstmOutput<W>& output = weights.output;
    output.skip = Tensor<T>::zeros({preprocessing.features(), 1});
    // θ' = θ + scale · out must be θ − lr · (g + 9 m'), from the raw features r · g and r · m_0.9 (r = raw_scale).
    constexpr int g = GradientPreprocessing::raw_column, m_09 = g + 2;
    constexpr double r = GradientPreprocessing::raw_scale;
    output.skip.data()[g] = -learning_rate / output_scale * T(1 / r);
    output.skip.data()[m_09] = -learning_rate / output_scale * T(9 / r);
    output.weight.array() = 0;
    output.bias.array() = 0;
  }

  /// Zero LSTM and feature state, one row per coordinate of params; throws value_error for no parameters.
  template <class C>
  State<C> init(const ParamList<C>& params) const {
    if (params.empty()) throw value_error("LstmOptimizer: no parameters to optimize");
    index_t n = 0;
    for (const auto& p : params) n += p.shape().size();
    const Tensor<T> zeros = Tensor<T>::zeros({n, hidden()}), feature_state = Tensor<T>::zeros({n, preprocessing.state_columns()});
    if constexpr (std::is_same_v<C, Tensor<T>>) {
      return {zeros, zeros, zeros, zeros, feature_state};
    } else {
      const C z = params[0].tape().constant(zeros);
      return {z, z, z, z, params[0].tape().constant(feature_state)};
    }
  }

  /// d = −scale · LSTM(preprocess(g)) for all coordinates at once, and the LSTM's next state.
  template <class C>
  std::pair<ParamList<C>, State<C>> direction(const ParamList<C>& params, const ParamList<C>& grads, State<C> state) const {
    static_assert(std::is_same_v<C, Var<T>> || std::is_same_v<W, Tensor<T>>, "LstmOptimizer: Var weights need Var parameters");
    optim_detail::check_lists("LstmOptimizer", params, grads, params.size());
    index_t n = 0;
    std::vector<C> flat;
    for (const auto& g : grads) {
      flat.push_back(reshape(g, Shape{g.shape().size()}));
      n += g.shape().size();
    }
    if (!(state.hidden1.shape() == Shape{n, hidden()}))
      throw shape_error("LstmOptimizer: state of shape " + state.hidden1.shape().str() + " for " + std::to_string(n) +
                        " coordinates (was it initialized for these parameters?)");
    auto [features, feature_state] = gradient_features(flat.size() == 1 ? flat[0] : concat(flat, 0), state.features, preprocessing);
    auto [h1, c1] = lstm_cell(features, state.hidden1, state.cell1, weights.layer1);
    auto [h2, c2] = lstm_cell(h1, state.hidden2, state.cell2, weights.layer2);
    const LstmOutput<W>& out = weights.output;
    const C step = reshape((matmul(h2, out.weight) + matmul(features, out.skip) + out.bias) * (-output_scale), Shape{n});
    ParamList<C> d;
    index_t offset = 0;
    for (const auto& p : params) {
      d.push_back(reshape(slice(step, 0, offset, p.shape().size()), p.shape()));
      offset += p.shape().size();
    }
    return {std::move(d), State<C>{std::move(h1), std::move(c1), std::move(h2), std::move(c2), std::move(feature_state)}};
  }
};

}  // namespace metagrad
