// The consumer computes d/dx Σ x² at x = (1, 2, 3) and exits non-zero unless it is (2, 4, 6).
#include <metagrad/metagrad.hpp>

int main() {
  metagrad::Tape<double> tape;
  auto x = tape.variable(metagrad::Tensor<double>(metagrad::Shape{3}, {1.0, 2.0, 3.0}));
  const auto g = metagrad::grad(metagrad::sum(metagrad::square(x)), {x});
  return g[0] == metagrad::Tensor<double>(metagrad::Shape{3}, {2.0, 4.0, 6.0}) ? 0 : 1;
}
