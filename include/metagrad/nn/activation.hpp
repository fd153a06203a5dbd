#pragma once
// The activations an MLP can use, chosen at run time (a command-line flag, a sweep), applied to either carrier.
#include <string>

#include "metagrad/autodiff/elementwise.hpp"

namespace metagrad {

/// A hidden layer's nonlinearity.
enum class Activation {
  tanh,     ///< tanh(x)
  relu,     ///< max(x, 0)
  sigmoid,  ///< 1 / (1 + e^−x)
};

inline const char* activation_name(Activation a) {  ///< Its name: "tanh", "relu" or "sigmoid".
  switch (a) {
    case Activation::tanh: return "tanh";
    case Activation::relu: return "relu";
    case Activation::sigmoid: return "sigmoid";
  }
  return "?";
}

/// "tanh", "relu" or "sigmoid"; anything else is a value_error naming the choices.
inline Activation activation_from_name(const std::string& name) {
  for (Activation a : {Activation::tanh, Activation::relu, Activation::sigmoid})
    if (name == activation_name(a)) return a;
  throw value_error("activation_from_name: unknown activation \"" + name + "\" (tanh, relu or sigmoid expected)");
}

/// a(x) on a Tensor or a Var.
template <class C>
C activate(Activation a, const C& x) {
  switch (a) {
    case Activation::tanh: return tanh(x);
    case Activation::relu: return relu(x);
    case Activation::sigmoid: return sigmoid(x);
  }
  throw value_error("activate: invalid Activation value");
}

}  // namespace metagrad
