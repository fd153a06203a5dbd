#pragma once
// Tensor trees: one generic walk over every bundle of tensors (parameters, optimizer and training states, learned
// optimizer weights, metaparameters) instead of a hand-written one per struct. A tree is
//   a leaf:   a Tensor<T> or a Var<T> (a tensor leaf), or a number (a counter, a step size), or a Shape (a tree of
//             shapes says what shapes a tree of tensors must have);
//   a node:   a std::vector, std::array, std::tuple or std::pair of trees, or a struct whose fields() names its
//             members — most simply with METAGRAD_FIELDS(a, b, c) inside the struct.
// Leaves are visited in a fixed order (members in the order fields() lists them, elements in index order), and each
// has a path: "optimizer.velocity[2]", "layer1.input". Trees "of the same structure" have the same node types, the
// same list lengths and the same fields; their leaf types may differ (a state on Tensors and on Vars).
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "metagrad/error.hpp"
#include "metagrad/tensor/tensor.hpp"

namespace metagrad {

template <class T> class Var;

/// A struct's members as a tree node: their names (as one comma-separated list) and references to them.
template <class... Members>
struct NamedFields {
  std::string_view names;           ///< The field names, comma-separated, as METAGRAD_FIELDS wrote them.
  std::tuple<Members&...> members;  ///< References to the fields, in the order of names.
};

/// named_fields("a, b", a, b): what a struct's fields() returns (METAGRAD_FIELDS writes it for you).
template <class... Members>
NamedFields<Members...> named_fields(std::string_view names, Members&... members) {
  return {names, std::tuple<Members&...>(members...)};
}

/// Inside a struct: makes it a tree node of the listed members, named as they are spelled.
#define METAGRAD_FIELDS(...)                                                                     \
  auto fields() { return ::metagrad::named_fields(#__VA_ARGS__, __VA_ARGS__); }               \
  auto fields() const { return ::metagrad::named_fields(#__VA_ARGS__, __VA_ARGS__); }

/// Where a leaf sits in its tree. Built on the stack as the walk descends; the text is made only when asked for.
class TreePath {
 public:
  TreePath() = default;
  TreePath(const TreePath& parent, std::string_view name) : parent_(&parent), name_(name) {}  ///< The path parent.name.
  /// The path parent[index].
  TreePath(const TreePath& parent, std::size_t index) : parent_(&parent), index_(index), is_index_(true) {}
  TreePath(const TreePath&) = delete;
  TreePath& operator=(const TreePath&) = delete;

  /// "optimizer.velocity[2]"; the root is "(root)" when it is a leaf itself.
  std::string str() const {
    std::string out;
    append(out);
    return out.empty() ? "(root)" : out;
  }

 private:
  void append(std::string& out) const {
    if (!parent_) return;
    parent_->append(out);
    if (is_index_) {
      out += '[' + std::to_string(index_) + ']';
    } else {
      if (!out.empty()) out += '.';
      out += name_;
    }
  }
  const TreePath* parent_ = nullptr;
  std::string_view name_;
  std::size_t index_ = 0;
  bool is_index_ = false;
};

namespace tree_detail {

template <class X> inline constexpr bool is_tensor = false;
template <class T> inline constexpr bool is_tensor<Tensor<T>> = true;
template <class T> inline constexpr bool is_tensor<Var<T>> = true;
template <class X> inline constexpr bool is_vector = false;
template <class X, class A> inline constexpr bool is_vector<std::vector<X, A>> = true;
template <class X> inline constexpr bool is_array = false;
template <class X, std::size_t N> inline constexpr bool is_array<std::array<X, N>> = true;
template <class X> inline constexpr bool is_tuple = false;
template <class... X> inline constexpr bool is_tuple<std::tuple<X...>> = true;
template <class A, class B> inline constexpr bool is_tuple<std::pair<A, B>> = true;
template <class X> concept has_fields = requires(X& x) { x.fields().members; };

/// Name i of a comma-separated list, without surrounding spaces.
inline std::string_view field_name(std::string_view names, std::size_t i) {
  for (; i > 0; --i) names.remove_prefix(names.find(',') + 1);
  names = names.substr(0, names.find(','));
  while (!names.empty() && names.front() == ' ') names.remove_prefix(1);
  while (!names.empty() && names.back() == ' ') names.remove_suffix(1);
  return names;
}

/// f(std::integral_constant<std::size_t, i>) for i = 0 … N − 1.
template <std::size_t N, class F>
void for_each_index(F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) { (f(std::integral_constant<std::size_t, I>{}), ...); }(std::make_index_sequence<N>{});
}

/// The walk over trees of the same structure: f(path, leaf, leaves of the others…) for every leaf, and
/// f.list(path, list) for every std::vector of the first tree before its elements when f has that member. With
/// `resize_last`, the last tree is an output whose lists are resized to the first's; otherwise a list whose length
/// differs from the first tree's is a shape_error naming `who` and the path.
template <bool resize_last, class F, class Tree, class... Others>
void walk(const char* who, const TreePath& path, F&& f, Tree& tree, Others&... others) {
  using X = std::remove_const_t<Tree>;
  if constexpr (is_tensor<X> || std::is_arithmetic_v<X> || std::is_same_v<X, Shape>) {
    f(path, tree, others...);
  } else if constexpr (is_vector<X>) {
    if constexpr (requires { f.list(path, tree); }) f.list(path, tree);
    std::size_t k = 0;
    const auto match = [&](auto& other) {
      if (resize_last && ++k == sizeof...(Others)) {
        if constexpr (!std::is_const_v<std::remove_reference_t<decltype(other)>>) other.resize(tree.size());
      } else if (other.size() != tree.size()) {
        throw shape_error(std::string(who) + ": " + path.str() + " holds " + std::to_string(other.size()) + " elements, expected " +
                          std::to_string(tree.size()));
      }
    };
    (match(others), ...);
    for (std::size_t i = 0; i < tree.size(); ++i) walk<resize_last>(who, TreePath(path, i), f, tree[i], others[i]...);
  } else if constexpr (is_array<X>) {
    for (std::size_t i = 0; i < tree.size(); ++i) walk<resize_last>(who, TreePath(path, i), f, tree[i], others[i]...);
  } else if constexpr (is_tuple<X>) {
    for_each_index<std::tuple_size_v<X>>([&](auto i) {
      walk<resize_last>(who, TreePath(path, i()), f, std::get<i()>(tree), std::get<i()>(others)...);
    });
  } else if constexpr (has_fields<X>) {
    const auto node = tree.fields();
    for_each_index<std::tuple_size_v<decltype(node.members)>>([&](auto i) {
      walk<resize_last>(who, TreePath(path, field_name(node.names, i())), f, std::get<i()>(node.members),
                        std::get<i()>(others.fields().members)...);
    });
  } else {
    static_assert(is_tensor<X>, "not a tree: a tree is a Tensor, a Var, a number, a std::vector / std::array / std::tuple "
                                "of trees, or a struct with fields() (METAGRAD_FIELDS)");
  }
}

/// The tensor type of a tree's leaves (void when it has none).
template <class X, class = void> struct leaf_type { using type = void; };
template <class X> using leaf_type_t = typename leaf_type<std::remove_cvref_t<X>>::type;
template <class... X> struct first_leaf { using type = void; };
template <class X, class... Rest>
struct first_leaf<X, Rest...> {
  using type = std::conditional_t<std::is_void_v<leaf_type_t<X>>, typename first_leaf<Rest...>::type, leaf_type_t<X>>;
};
template <class X> struct leaf_type<X, std::enable_if_t<is_tensor<X>>> { using type = X; };
template <class X> struct leaf_type<X, std::enable_if_t<is_vector<X> || is_array<X>>> { using type = leaf_type_t<typename X::value_type>; };
template <class... X> struct leaf_type<std::tuple<X...>> : first_leaf<X...> {};
template <class A, class B> struct leaf_type<std::pair<A, B>> : first_leaf<A, B> {};
template <class... M> struct leaf_type<NamedFields<M...>> : first_leaf<M...> {};
template <class X>
struct leaf_type<X, std::enable_if_t<has_fields<X> && !is_vector<X>>> : leaf_type<decltype(std::declval<X&>().fields())> {};

}  // namespace tree_detail

/// The tensor type of `Tree`'s leaves: Tensor<T> or Var<T>.
template <class Tree>
using tree_leaf_t = tree_detail::leaf_type_t<Tree>;

/// f(path, leaf, leaves of the others…) for every leaf of `tree`, tensors and numbers, in the tree's order; `others`
/// must have its structure (a list of another length is a shape_error naming the path). When f has a member
/// list(path, vector), it also sees every std::vector of `tree` before its elements.
template <class F, class Tree, class... Others>
void tree_for_each(F&& f, Tree&& tree, Others&&... others) {
  tree_detail::walk<false>("tree_for_each", TreePath(), f, tree, others...);
}

/// `tree` as a tree of type Out with the same structure (Tensor ↔ Var, float ↔ double, Shape → Tensor): every tensor
/// (or shape) leaf through `convert(leaf)`, numbers as they are. Out's members outside fields() are value-initialized. `convert` receives
/// non-const leaves when `tree` is non-const, and may move them.
template <class Out, class Tree, class Convert>
Out tree_convert(Tree&& tree, Convert&& convert) {
  Out out{};
  tree_detail::walk<true>("tree_convert", TreePath(), [&](const TreePath&, auto& from, auto& to) {
    if constexpr (std::is_arithmetic_v<std::remove_cvref_t<decltype(from)>>) to = static_cast<std::remove_reference_t<decltype(to)>>(from);
    else to = convert(from);
  }, tree, out);
  return out;
}

/// The tree of f(leaf) for every tensor leaf (numbers as they are): a tree of the same type.
template <class Tree, class F>
Tree tree_map(const Tree& tree, F&& f) {
  return tree_convert<Tree>(tree, f);
}

/// The tree of f(a_leaf, b_leaf) for two trees of the same structure (numbers from `a`): a tree of a's type.
template <class Tree, class Other, class F>
Tree tree_zip_map(const Tree& a, const Other& b, F&& f) {
  Tree out{};
  tree_detail::walk<true>("tree_zip_map", TreePath(), [&](const TreePath&, const auto& x, const auto& y, auto& to) {
    if constexpr (tree_detail::is_tensor<std::remove_cvref_t<decltype(x)>>) to = f(x, y);
    else to = x;
  }, a, b, out);
  return out;
}

/// Every tensor leaf of `tree`, in the tree's order (copies; Vars stay on their tape).
template <class Tree>
std::vector<tree_leaf_t<Tree>> tree_flatten(const Tree& tree) {
  static_assert(!std::is_void_v<tree_leaf_t<Tree>>, "tree_flatten: this tree type holds no tensors (tree_paths works on any tree)");
  std::vector<tree_leaf_t<Tree>> out;
  tree_for_each([&](const TreePath&, const auto& leaf) {
    if constexpr (tree_detail::is_tensor<std::remove_cvref_t<decltype(leaf)>>) out.push_back(leaf);
  }, tree);
  return out;
}

/// The paths of `tree`'s tensor leaves, in the order tree_flatten lists them.
template <class Tree>
std::vector<std::string> tree_paths(const Tree& tree) {
  std::vector<std::string> out;
  tree_for_each([&](const TreePath& path, const auto& leaf) {
    if constexpr (tree_detail::is_tensor<std::remove_cvref_t<decltype(leaf)>>) out.push_back(path.str());
  }, tree);
  return out;
}

/// A tree of `like`'s structure and numbers whose tensor leaves are `leaves`, taken in order: each must have the
/// shape of `like`'s leaf at its place (a mismatch is a shape_error naming the path and both shapes), and there must
/// be exactly as many.
template <class Tree, class Leaf>
Tree tree_unflatten(const Tree& like, std::vector<Leaf> leaves) {
  std::size_t next = 0;
  Tree out{};
  tree_detail::walk<true>("tree_unflatten", TreePath(), [&](const TreePath& path, const auto& model, auto& to) {
    if constexpr (tree_detail::is_tensor<std::remove_cvref_t<decltype(model)>>) {
      if (next >= leaves.size())
        throw shape_error("tree_unflatten: " + std::to_string(leaves.size()) + " tensors for a tree of more (" + path.str() + " is missing)");
      if (!(leaves[next].shape() == model.shape()))
        throw shape_error("tree_unflatten: " + path.str() + " has shape " + leaves[next].shape().str() + ", expected " + model.shape().str());
      to = std::move(leaves[next++]);
    } else {
      to = model;
    }
  }, like, out);
  if (next != leaves.size())
    throw shape_error("tree_unflatten: " + std::to_string(leaves.size()) + " tensors for a tree of " + std::to_string(next));
  return out;
}

/// How many elements the tensor leaves of a plain tree hold together.
template <class Tree>
index_t tree_element_count(const Tree& tree) {
  index_t count = 0;
  tree_for_each([&](const TreePath&, const auto& leaf) {
    if constexpr (tree_detail::is_tensor<std::remove_cvref_t<decltype(leaf)>>) count += leaf.size();
  }, tree);
  return count;
}

/// Writes the elements of a plain tree's tensor leaves to `out`, leaf after leaf in the tree's order (the layout an
/// exchange of whole trees uses); returns one past the last written.
template <class Tree, class T>
T* tree_write_elements(const Tree& tree, T* out) {
  tree_for_each([&](const TreePath&, const auto& leaf) {
    if constexpr (tree_detail::is_tensor<std::remove_cvref_t<decltype(leaf)>>) out = std::copy(leaf.begin(), leaf.end(), out);
  }, tree);
  return out;
}

/// A tree of `like`'s structure, shapes and numbers whose tensor leaves hold the elements at `in`, laid out as
/// tree_write_elements writes them.
template <class Tree, class T>
Tree tree_read_elements(const Tree& like, const T* in) {
  return tree_map(like, [&](const auto& leaf) {
    auto out = std::remove_cvref_t<decltype(leaf)>::uninitialized(leaf.shape());
    std::copy_n(in, leaf.size(), out.data());
    in += leaf.size();
    return out;
  });
}

/// A 64-bit hash of a plain tree's bits (shapes, values and numbers): equal trees hash equal, and trees that differ
/// in any bit almost surely do not. Four independent lanes, so hashing runs at memory speed.
template <class Tree>
std::uint64_t tree_hash(const Tree& tree) {
  constexpr std::uint64_t prime = 0x100000001b3ull;
  std::uint64_t h[4] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull, 0x9E3779B97F4A7C15ull, 0xBF58476D1CE4E5B9ull};
  const auto mix = [&](std::uint64_t& lane, std::uint64_t x) { lane = (lane ^ x) * prime; };
  tree_for_each([&](const TreePath&, const auto& leaf) {
    using X = std::remove_cvref_t<decltype(leaf)>;
    if constexpr (std::is_arithmetic_v<X>) {
      std::uint64_t bits = 0;
      std::memcpy(&bits, &leaf, sizeof leaf);
      mix(h[0], bits);
    } else if constexpr (std::is_same_v<X, Shape>) {
      for (int d = 0; d < leaf.rank(); ++d) mix(h[0], static_cast<std::uint64_t>(leaf[d]));
    } else {
      using T = typename X::value_type;
      static_assert(std::is_same_v<X, Tensor<T>>, "tree_hash: a tree of plain tensors expected");
      for (int d = 0; d < leaf.rank(); ++d) mix(h[0], static_cast<std::uint64_t>(leaf.shape()[d]));
      const auto* bytes = reinterpret_cast<const unsigned char*>(leaf.data());
      const std::size_t n = static_cast<std::size_t>(leaf.size()) * sizeof(T);
      std::size_t i = 0;
      for (std::uint64_t w[4]; i + sizeof w <= n; i += sizeof w) {
        std::memcpy(w, bytes + i, sizeof w);
        for (int k = 0; k < 4; ++k) mix(h[k], w[k]);
      }
      for (; i < n; ++i) mix(h[0], bytes[i]);
    }
  }, tree);
  std::uint64_t out = 0;
  for (std::uint64_t lane : h) out = (out ^ (lane ^ (lane >> 31))) * 0x94D049BB133111EBull;
  return out;
}

}  // namespace metagrad
