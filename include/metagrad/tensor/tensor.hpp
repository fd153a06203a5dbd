#pragma once
// Tensor<T>: a dense, row-major array of rank 0 to 4 with value semantics (copies are deep, moves are free),
// stored contiguously and aligned so that Eigen maps over it vectorize. A Tensor owns its memory (except the views a
// tape records, see owns_data): Eigen views of a Tensor are zero-copy maps; an Eigen matrix becomes a Tensor by one
// copy (from_eigen).
#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "metagrad/error.hpp"
#include "metagrad/tensor/buffer.hpp"
#include "metagrad/tensor/random.hpp"
#include "metagrad/tensor/shape.hpp"

namespace metagrad {

/// A dense row-major tensor of float or double that owns its storage; a leaf of every tensor tree.
template <class T>
class Tensor {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "Tensor<T> supports float and double");

 public:
  using value_type = T;  ///< The element type, float or double.
  /// A rank-2 view as an Eigen matrix (row-major, aligned).
  using MatrixMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, Eigen::Aligned>;
  /// A read-only rank-2 view as an Eigen matrix.
  using ConstMatrixMap =
      Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, Eigen::Aligned>;
  /// The elements as an Eigen array, in storage order.
  using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>, Eigen::Aligned>;
  /// Read-only view of the elements as an Eigen array.
  using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>, Eigen::Aligned>;

  /// A rank-0 tensor holding 0.
  Tensor() : Tensor(Shape{}, T(0)) {}

  Tensor(const Tensor&) = default;             ///< Deep copy.
  Tensor& operator=(const Tensor&) = default;  ///< Deep copy.
  /// A moved-from tensor is empty, of shape [0].
  Tensor(Tensor&& other) noexcept : shape_(std::exchange(other.shape_, Shape{0})), data_(std::move(other.data_)) {}
  /// Takes other's storage; other becomes an empty rank-0 tensor of size 0.
  Tensor& operator=(Tensor&& other) noexcept {
    shape_ = std::exchange(other.shape_, Shape{0});
    data_ = std::move(other.data_);
    return *this;
  }

  /// A tensor of `shape` filled with `fill`.
  explicit Tensor(const Shape& shape, T fill = T(0)) : shape_(shape), data_(shape.size()) { array().setConstant(fill); }

  /// A tensor of `shape` with the given row-major values (their count must match).
  Tensor(const Shape& shape, std::initializer_list<T> values) : Tensor(shape, std::vector<T>(values)) {}

  /// A tensor of this shape holding values in row-major order; throws shape_error if their count differs.
  Tensor(const Shape& shape, const std::vector<T>& values) : shape_(shape), data_(shape.size()) {
    if (static_cast<index_t>(values.size()) != shape.size())
      throw shape_error("Tensor: " + std::to_string(values.size()) + " values given for shape " + shape.str() +
                        ", which holds " + std::to_string(shape.size()));
    std::copy(values.begin(), values.end(), data_.data());
  }


  /// A tensor of `shape` whose elements are indeterminate: for kernels that write every element.
  static Tensor uninitialized(const Shape& shape) { return Tensor(shape, Buffer<T>(shape.size())); }

  static Tensor scalar(T value) { return Tensor(Shape{}, value); }         ///< A rank-0 tensor holding value.
  static Tensor zeros(const Shape& shape) { return Tensor(shape, T(0)); }  ///< A tensor of this shape filled with 0.
  static Tensor ones(const Shape& shape) { return Tensor(shape, T(1)); }   ///< A tensor of this shape filled with 1.
  /// The n × n identity matrix.
  static Tensor eye(index_t n) {
    Tensor t = zeros(Shape{n, n});
    for (index_t i = 0; i < n; ++i) t.data()[i * n + i] = T(1);
    return t;
  }
  /// A tensor of this shape filled with value.
  static Tensor full(const Shape& shape, T value) { return Tensor(shape, value); }

  /// Normal(mean, stddev) draws; the same seed gives the same tensor everywhere.
  static Tensor random_normal(const Shape& shape, std::uint64_t seed, T mean = T(0), T stddev = T(1)) {
    Tensor t = Tensor::uninitialized(shape);
    SplitMix64 rng(seed);
    for (index_t i = 0; i < t.size(); ++i) t.data()[i] = mean + stddev * static_cast<T>(rng.normal());
    return t;
  }

  /// Uniform draws in [low, high); the same seed gives the same tensor everywhere.
  static Tensor random_uniform(const Shape& shape, std::uint64_t seed, T low = T(0), T high = T(1)) {
    Tensor t = Tensor::uninitialized(shape);
    SplitMix64 rng(seed);
    for (index_t i = 0; i < t.size(); ++i) t.data()[i] = low + (high - low) * static_cast<T>(rng.uniform());
    return t;
  }

  /// Copies any Eigen matrix or vector expression (rank 2, or rank 1 when it has one column).
  template <class Derived>
  static Tensor from_eigen(const Eigen::DenseBase<Derived>& m) {
    Tensor t = Tensor::uninitialized(Shape{m.rows(), m.cols()});
    t.matrix() = m.derived().template cast<T>().matrix();
    return t;
  }

  const Shape& shape() const { return shape_; }   ///< Its shape.
  int rank() const { return shape_.rank(); }      ///< Number of axes.
  index_t size() const { return shape_.size(); }  ///< Number of elements.
  /// Extent of an axis; negative axes count from the end.
  index_t dim(int axis) const { return shape_[normalize_axis("Tensor::dim", axis, shape_)]; }

  T* data() { return data_.data(); }                ///< Elements in row-major order.
  const T* data() const { return data_.data(); }    ///< Elements in row-major order.
  T* begin() { return data(); }                     ///< First element, for range-for and the standard algorithms.
  T* end() { return data() + size(); }              ///< One past the last element.
  const T* begin() const { return data(); }         ///< First element.
  const T* end() const { return data() + size(); }  ///< One past the last element.

  /// Checked element access: one index per axis, each in range.
  template <class... I>
  T& operator()(I... idx) {
    return data()[offset({static_cast<index_t>(idx)...})];
  }
  /// Checked read-only element access.
  template <class... I>
  const T& operator()(I... idx) const {
    return data()[offset({static_cast<index_t>(idx)...})];
  }

  /// The value of a rank-0 (or one-element) tensor.
  T item() const {
    if (size() != 1) throw shape_error("Tensor::item: tensor of shape " + shape_.str() + " has more than one element");
    return data()[0];
  }

  /// A copy with a new shape of the same size.
  Tensor reshape(const Shape& shape) const& { return Tensor(*this).reshape(shape); }
  /// Moves the elements into a new shape of the same size, without a copy.
  Tensor reshape(const Shape& shape) && {
    if (shape.size() != size())
      throw shape_error("reshape: cannot reshape " + shape_.str() + " (" + std::to_string(size()) + " elements) to " +
                        shape.str());
    shape_ = shape;
    return std::move(*this);
  }

  /// Zero-copy Eigen views. `matrix()` needs rank 2 (rank 1 maps as one row, rank 0 as 1x1);
  /// `array()` is the flat storage.
  MatrixMap matrix() { return MatrixMap(data(), rows(), cols()); }
  /// Read-only matrix view (rank 1 is one row, rank 0 is 1x1).
  ConstMatrixMap matrix() const { return ConstMatrixMap(data(), rows(), cols()); }
  ArrayMap array() { return ArrayMap(data(), size()); }                  ///< The elements as a writable Eigen array.
  ConstArrayMap array() const { return ConstArrayMap(data(), size()); }  ///< The elements as a read-only Eigen array.

  /// False for a view: a node recorded on a tape (reshape, a contiguous slice, stop_gradient) that shares the
  /// elements of an earlier node instead of copying them. Copies of a view own their elements.
  bool owns_data() const { return data_.owned(); }

  /// True when no element is NaN or infinite, in one vectorized pass: x·0 is 0 for finite x and NaN otherwise.
  bool all_finite() const { return std::isfinite((array() * T(0)).sum()); }

  /// Elementwise equality of shape and bits.
  friend bool operator==(const Tensor& a, const Tensor& b) {
    return a.shape_ == b.shape_ && (a.array() == b.array()).all();
  }

  /// Prints the shape and the elements.
  friend std::ostream& operator<<(std::ostream& os, const Tensor& t) {
    os << "Tensor" << t.shape_.str() << " {";
    for (index_t i = 0; i < t.size(); ++i) os << (i ? ", " : "") << t.data()[i];
    return os << "}";
  }

 private:
  index_t rows() const {
    if (rank() > 2) throw shape_error("Tensor::matrix: rank-" + std::to_string(rank()) + " tensor " + shape_.str() +
                                      " has no matrix view (rank 2 expected)");
    return rank() == 2 ? shape_[0] : 1;
  }
  index_t cols() const { return rank() == 0 ? 1 : shape_[rank() - 1]; }

  index_t offset(std::initializer_list<index_t> idx) const {
    if (static_cast<int>(idx.size()) != rank())
      throw value_error("Tensor: " + std::to_string(idx.size()) + " indices given for shape " + shape_.str());
    index_t off = 0;
    int axis = 0;
    for (index_t i : idx) {
      if (i < 0 || i >= shape_[axis])
        throw value_error("Tensor: index " + std::to_string(i) + " out of range on axis " + std::to_string(axis) +
                          " of shape " + shape_.str());
      off = off * shape_[axis] + i;
      ++axis;
    }
    return off;
  }

  Tensor(const Shape& shape, Buffer<T>&& buffer) : shape_(shape), data_(std::move(buffer)) {}

  template <class U> friend class Tape;
  /// Eigen's maps of a tensor promise 16-byte alignment (Eigen::Aligned); a view must start on such an address.
  static bool can_view(const Tensor& x, index_t offset) {
    return reinterpret_cast<std::uintptr_t>(x.data() + offset) % 16 == 0;
  }
  /// shape.size() elements of x from flat position offset, shared rather than copied: valid while x lives and is
  /// not written. Only the tape makes views, of nodes that outlive them and that it keeps unchanged.
  static Tensor view(const Tensor& x, index_t offset, const Shape& shape) {
    return Tensor(shape, Buffer<T>::borrow(const_cast<T*>(x.data()) + offset, shape.size()));
  }

  Shape shape_;
  Buffer<T> data_;
};

}  // namespace metagrad
