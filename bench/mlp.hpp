#pragma once
// The benchmark problem shared by bench/: an MLP 784-256-10 with tanh and softmax cross-entropy, batch 128,
// in double precision — once through metagrad's tape and once written by hand with Eigen and metagrad's kernels.
#include <metagrad/metagrad.hpp>

#include <vector>

namespace bench {

using namespace metagrad;
using T = double;
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr index_t batch = 128, inputs = 784, hidden = 256, classes = 10;

struct Problem {
  Tensor<T> x = Tensor<T>::random_normal({batch, inputs}, 1);
  IndexVector labels;
  std::vector<Tensor<T>> params = {Tensor<T>::random_normal({inputs, hidden}, 2, 0, 0.05), Tensor<T>::zeros({hidden}),
                                   Tensor<T>::random_normal({hidden, classes}, 3, 0, 0.1), Tensor<T>::zeros({classes})};
  std::vector<Tensor<T>> direction;  // for Hessian-vector products
  Problem() {
    for (index_t i = 0; i < batch; ++i) labels.push_back(i % classes);
    for (std::size_t i = 0; i < params.size(); ++i)
      direction.push_back(Tensor<T>::random_normal(params[i].shape(), 10 + i));
  }
};

inline const Mlp<T> model{{inputs, hidden, classes}, Activation::tanh};

/// The loss as a template over the carrier: the same code runs on Tensors and on Vars.
template <class P, class X>
auto loss(const std::vector<P>& p, const X& x, const IndexVector& labels) {
  return mean(cross_entropy(model.logits(p, x), labels));
}

/// The problem on a tape: parameters and input recorded once, before a mark, as a training loop would keep them
/// (updating parameters in place with Tape::mutable_value between steps).
struct TapeModel {
  Tape<T> tape;
  std::vector<Var<T>> params;
  Var<T> x;
  Tape<T>::Mark start;
  explicit TapeModel(const Problem& pb) {
    for (const auto& p : pb.params) params.push_back(tape.variable(p));
    x = tape.constant(pb.x);
    start = tape.mark();
  }
};

/// One training step's gradient through the tape: record, sweep, reclaim the step's nodes.
inline std::vector<Tensor<T>> tape_gradient(TapeModel& m, const Problem& pb) {
  auto g = grad(loss(m.params, m.x, pb.labels), m.params);
  m.tape.rewind(m.start);
  return g;
}

inline std::vector<Tensor<T>> tape_hvp(TapeModel& m, const Problem& pb) {
  auto hv = hvp(loss(m.params, m.x, pb.labels), m.params, pb.direction);
  m.tape.rewind(m.start);
  return hv;
}

/// The same gradient derived by hand, written with Eigen into preallocated buffers and with metagrad's product and
/// tanh kernels: the best a user could do without a tape, so that the comparison measures only the tape.
class HandWritten {
 public:
  explicit HandWritten(const Problem& pb)
      : z1_(batch, hidden), h_(batch, hidden), z2_(batch, classes), dz2_(batch, classes), dh_(batch, hidden),
        dw1_(inputs, hidden), db1_(hidden), dw2_(hidden, classes), db2_(classes), pb_(pb) {}

  T gradient() {
    const auto b1 = pb_.params[1].matrix(), b2 = pb_.params[3].matrix();  // 1 x n rows
    product(pb_.x.data(), false, pb_.params[0].data(), false, inputs, z1_);  // z1 = x·W1
    z1_.rowwise() += b1.row(0);
    metagrad::detail::tanh_double(z1_.data(), h_.data(), z1_.size());  // metagrad's kernel: only the tape differs
    product(h_.data(), false, pb_.params[2].data(), false, hidden, z2_);  // z2 = h·W2
    z2_.rowwise() += b2.row(0);
    T loss = 0;
    for (index_t i = 0; i < batch; ++i) {  // softmax cross-entropy and its gradient, row by row
      auto row = z2_.row(i).array();
      const T m = row.maxCoeff();
      const auto e = (row - m).exp();
      const T s = e.sum();
      const index_t y = pb_.labels[static_cast<std::size_t>(i)];
      loss += m + std::log(s) - row(y);
      dz2_.row(i) = (e / (s * batch)).matrix();
      dz2_(i, y) -= T(1) / batch;
    }
    product(h_.data(), true, dz2_.data(), false, batch, dw2_);  // dW2 = hᵀ·dz2
    db2_ = dz2_.colwise().sum();
    product(dz2_.data(), false, pb_.params[2].data(), true, classes, dh_);  // dh = dz2·W2ᵀ
    dh_.array() *= 1 - h_.array().square();
    product(pb_.x.data(), true, dh_.data(), false, batch, dw1_);  // dW1 = xᵀ·dh
    db1_ = dh_.colwise().sum();
    return loss / batch;
  }

  const RowMatrix& dw1() const { return dw1_; }

 private:
  /// out = op(a)·op(b) over `depth` inner steps, a and b row-major, by metagrad's matrix-product kernel.
  static void product(const T* a, bool ta, const T* b, bool tb, index_t depth, RowMatrix& out) {
    const index_t m = out.rows(), n = out.cols();
    using metagrad::detail::operand;
    metagrad::detail::gemm(m, n, depth, operand(a, ta ? m : depth, ta), operand(b, tb ? depth : n, tb), out.data());
  }

  RowMatrix z1_, h_, z2_, dz2_, dh_, dw1_;
  Eigen::RowVectorXd db1_;
  RowMatrix dw2_;
  Eigen::RowVectorXd db2_;
  const Problem& pb_;
};

}  // namespace bench
