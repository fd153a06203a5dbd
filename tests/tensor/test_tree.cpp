// Tensor trees: paths and order, map / zip / flatten / unflatten / convert / hash, and save / load as one archive.
#include <array>
#include <cmath>
#include <filesystem>
#include <random>
#include <tuple>

#include "support.hpp"

namespace metagrad::test {
namespace {

template <class C>
struct Layer {
  C weight, bias;
  METAGRAD_FIELDS(weight, bias)
};

/// Every kind of node: a list of structs, an array, a tuple with a counter, a number.
template <class C>
struct Model {
  std::vector<Layer<C>> layers;
  std::array<C, 2> pair;
  std::tuple<C, std::int64_t> extra;
  double scale = 0;
  METAGRAD_FIELDS(layers, pair, extra, scale)
};

Model<TD> model(std::uint64_t seed) {
  return {{{randn({3, 2}, seed), randn({2}, seed + 1)}, {randn({2, 1}, seed + 2), randn({1}, seed + 3)}},
          {randn({4}, seed + 4), randn({}, seed + 5)},
          {randn({2, 2}, seed + 6), 7},
          0.5};
}

}  // namespace

TEST_SUITE("tensor") {

TEST_CASE("a tree's leaves have paths and a fixed order") {
  const Model<TD> m = model(1);
  CHECK(tree_paths(m) == std::vector<std::string>{"layers[0].weight", "layers[0].bias", "layers[1].weight", "layers[1].bias",
                                                  "pair[0]", "pair[1]", "extra[0]"});
  const std::vector<TD> leaves = tree_flatten(m);
  REQUIRE(leaves.size() == 7);
  CHECK(leaves[2] == m.layers[1].weight);
  CHECK(leaves[6] == std::get<0>(m.extra));
  std::vector<std::string> all;  // tree_for_each sees the numbers too
  tree_for_each([&](const TreePath& path, const auto&) { all.push_back(path.str()); }, m);
  CHECK(all.size() == 9);
  CHECK(all[7] == "extra[1]");
  CHECK(all[8] == "scale");
  CHECK(tree_paths(TD::ones({2})) == std::vector<std::string>{"(root)"});
}

TEST_CASE("tree_map and tree_zip_map keep the structure and the numbers") {
  const Model<TD> a = model(1), b = model(20);
  const Model<TD> doubled = tree_map(a, [](const TD& t) { return t * 2.0; });
  CHECK(doubled.layers[1].bias == a.layers[1].bias * 2.0);
  CHECK(std::get<1>(doubled.extra) == 7);
  CHECK(doubled.scale == 0.5);
  const Model<TD> sum = tree_zip_map(a, b, [](const TD& x, const TD& y) { return x + y; });
  CHECK(sum.pair[0] == a.pair[0] + b.pair[0]);
  Model<TD> shorter = b;
  shorter.layers.pop_back();
  check_throws_with<shape_error>([&] { (void)tree_zip_map(a, shorter, [](const TD& x, const TD&) { return x; }); },
                                 {"tree_zip_map", "layers holds 1 elements, expected 2"});
}

TEST_CASE("tree_unflatten puts a flat list back, checking the count and every shape by path") {
  const Model<TD> m = model(1);
  std::vector<TD> leaves = tree_flatten(m);
  for (auto& t : leaves) t = t + 1.0;
  const Model<TD> back = tree_unflatten(m, leaves);
  CHECK(back.layers[0].weight == m.layers[0].weight + 1.0);
  CHECK(std::get<1>(back.extra) == 7);
  std::vector<TD> wrong = leaves;
  wrong[3] = TD::zeros({2});
  check_throws_with<shape_error>([&] { (void)tree_unflatten(m, wrong); }, {"layers[1].bias has shape [2], expected [1]"});
  wrong = leaves;
  wrong.pop_back();
  check_throws_with<shape_error>([&] { (void)tree_unflatten(m, wrong); }, {"6 tensors", "extra[0] is missing"});
  wrong = leaves;
  wrong.push_back(TD::zeros({1}));
  check_throws_with<shape_error>([&] { (void)tree_unflatten(m, wrong); }, {"8 tensors for a tree of 7"});
}

TEST_CASE("a tree's elements written in one block, in tree_flatten's order, and read back into the same tree") {
  const Model<TD> m = model(1);
  const index_t count = tree_element_count(m);
  CHECK(count == 6 + 2 + 2 + 1 + 4 + 1 + 4);
  std::vector<double> block(static_cast<std::size_t>(count) + 1, -1.0);
  CHECK(tree_write_elements(m, block.data()) == block.data() + count);
  CHECK(block.back() == -1.0);  // nothing written past the end
  std::vector<double> expected;
  for (const TD& leaf : tree_flatten(m)) expected.insert(expected.end(), leaf.begin(), leaf.end());
  CHECK(std::vector<double>(block.begin(), block.end() - 1) == expected);
  for (double& x : block) x *= 2;
  const Model<TD> doubled = tree_read_elements(m, block.data());
  CHECK(tree_hash(doubled) == tree_hash(tree_map(m, [](const TD& t) { return t * 2.0; })));
  CHECK(std::get<1>(doubled.extra) == 7);
  CHECK(doubled.scale == 0.5);
}

TEST_CASE("tree_convert moves a tree onto a tape and back; gradients come back as the same tree") {
  const Model<TD> m = model(1);
  Tape<double> tape;
  const Model<VD> on_tape = tree_convert<Model<VD>>(m, [&](const TD& t) { return tape.variable(t); });
  CHECK(on_tape.scale == 0.5);
  CHECK(std::get<1>(on_tape.extra) == 7);
  VD total = sum(square(on_tape.layers[0].weight));
  for (const VD& v : tree_flatten(on_tape)) total = total + sum(v);
  const Model<TD> gradient = tree_unflatten(m, grad(total, tree_flatten(on_tape)));
  CHECK(gradient.layers[0].weight == m.layers[0].weight * 2.0 + 1.0);
  CHECK(gradient.pair[1] == TD::ones({}));
  const Model<TD> values = tree_convert<Model<TD>>(on_tape, [](const VD& v) { return v.value(); });
  CHECK(tree_hash(values) == tree_hash(m));
  // A tree of shapes says what a tree of tensors must be: converted, each shape goes through the conversion too.
  const Layer<TD> ones = tree_convert<Layer<TD>>(Layer<Shape>{{2, 3}, {3}}, [](const Shape& s) { return TD::full(s, 1.0); });
  CHECK(ones.weight == TD::full({2, 3}, 1.0));
  CHECK(ones.bias == TD::full({3}, 1.0));
}

TEST_CASE("tree_hash sees every bit of every leaf") {
  const Model<TD> m = model(1);
  CHECK(tree_hash(m) == tree_hash(model(1)));
  Model<TD> other = m;
  other.layers[1].bias.data()[0] = std::nextafter(other.layers[1].bias.data()[0], 10.0);
  CHECK(tree_hash(other) != tree_hash(m));
  other = m;
  std::get<1>(other.extra) = 8;
  CHECK(tree_hash(other) != tree_hash(m));
  other = m;
  other.pair[0] = TD::zeros({2, 2});  // same values and count, another shape
  Model<TD> reshaped = m;
  reshaped.pair[0] = TD::zeros({4});
  CHECK(tree_hash(other) != tree_hash(reshaped));
}

TEST_CASE("any tree saves as one archive named by its paths and loads back, checked, or not at all") {
  const TempDir dir;
  const Model<TD> m = model(1);
  save_tree(dir / "model.npz", m);
  std::vector<std::string> names;
  for (const auto& [name, tensor] : load_npz<double>(dir / "model.npz")) names.push_back(name);
  CHECK(names == std::vector<std::string>{"layers[0].weight", "layers[0].bias", "layers[1].weight", "layers[1].bias", "pair[0]",
                                          "pair[1]", "extra[0]", "extra[1]", "scale"});
  Model<TD> loaded = model(50);
  loaded.scale = 3;
  load_tree(dir / "model.npz", loaded);
  CHECK(tree_hash(loaded) == tree_hash(m));
  // Float leaves stay float.
  const Layer<Tensor<float>> small{Tensor<float>::ones({2}), Tensor<float>::zeros({1})};
  save_tree(dir / "float.npz", small);
  Layer<Tensor<float>> small_loaded{Tensor<float>::zeros({2}), Tensor<float>::ones({1})};
  load_tree(dir / "float.npz", small_loaded);
  CHECK(small_loaded.weight == small.weight);
  // Another structure, another shape: refused, and the tree is as it was.
  Model<TD> other = model(9);
  other.layers.pop_back();
  std::uint64_t before = tree_hash(other);
  check_throws_with<io_error>([&] { load_tree(dir / "model.npz", other); }, {"model.npz", "entry layers[1].bias is not in the tree"});
  CHECK(tree_hash(other) == before);
  other = model(9);
  other.layers[1].weight = TD::zeros({2, 2});
  before = tree_hash(other);
  check_throws_with<io_error>([&] { load_tree(dir / "model.npz", other); }, {"layers[1].weight has shape [2, 1], expected [2, 2]"});
  CHECK(tree_hash(other) == before);
}

}  // TEST_SUITE
}  // namespace metagrad::test
