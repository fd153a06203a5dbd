#pragma once
// The LSTM cell, for a batch of rows and either carrier (a learned optimizer runs one row per parameter coordinate).
#include <string>
#include <utility>

#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/autodiff/index.hpp"
#include "metagrad/autodiff/linalg.hpp"

namespace metagrad {

/// The weights of one LSTM layer with `inputs` inputs and `hidden` units: gates in PyTorch's order [i, f, g, o].
template <class C>
struct LstmWeights {
  C input;      // [inputs, 4·hidden]
  C recurrent;  // [hidden, 4·hidden]
  C bias;       // [4·hidden]
};

/// One step of an LSTM layer: z = x·W_x + h·W_h + b split into gates i, f, g, o; c' = σ(f)⊙c + σ(i)⊙tanh(g),
/// h' = σ(o)⊙tanh(c'). x is [rows, inputs], h and c are [rows, hidden]. Returns (h', c').
template <class X, class H, class W>
auto lstm_cell(const X& x, const H& h, const H& c, const LstmWeights<W>& w) {
  const index_t hidden = w.recurrent.shape()[0];
  if (w.recurrent.shape().rank() != 2 || w.recurrent.shape()[1] != 4 * hidden || w.input.shape().rank() != 2 ||
      w.input.shape()[1] != 4 * hidden || !(w.bias.shape() == Shape{4 * hidden}))
    throw shape_error("lstm_cell: weights " + w.input.shape().str() + ", " + w.recurrent.shape().str() + ", " + w.bias.shape().str() +
                      " (expected [inputs, 4H], [H, 4H], [4H])");
  if (x.shape().rank() != 2 || x.shape()[1] != w.input.shape()[0] || !(h.shape() == Shape{x.shape()[0], hidden}) ||
      !(c.shape() == h.shape()))
    throw shape_error("lstm_cell: input " + x.shape().str() + ", hidden " + h.shape().str() + ", cell " + c.shape().str() +
                      " for weights of " + std::to_string(w.input.shape()[0]) + " inputs and " + std::to_string(hidden) + " units");
  const auto z = matmul(x, w.input) + matmul(h, w.recurrent) + w.bias;
  const auto gate = [&](int k) { return slice(z, 1, k * hidden, hidden); };
  const auto cell = sigmoid(gate(1)) * c + sigmoid(gate(0)) * tanh(gate(2));
  auto out = sigmoid(gate(3)) * tanh(cell);
  return std::pair{out, cell};
}

}  // namespace metagrad
