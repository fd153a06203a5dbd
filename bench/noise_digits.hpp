#pragma once
// 1,024 digits of noise with MNIST's shape, for benchmarks of optimizee steps: their cost does not depend on the pixels.
#include <metagrad/metagrad.hpp>

namespace bench {

template <class T>
const metagrad::Dataset<T>& noise_digits() {
  static const metagrad::Dataset<T> data = [] {
    metagrad::Dataset<T> d{metagrad::Tensor<T>::random_uniform({1024, 784}, 1, 0, 1), {}, 10};
    for (metagrad::index_t i = 0; i < 1024; ++i) d.labels.push_back(i % 10);
    return d;
  }();
  return data;
}

}  // namespace bench
