// .npy files and optimizer states: round trips, files written byte by byte as NumPy writes them, and corrupt input.
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;
namespace fs = std::filesystem;

namespace {
std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void write_all(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }
}  // namespace

TEST_SUITE("io") {

TEST_CASE(".npy round trips and NumPy's exact layout") {
  TempDir dir;
  const TD t = randn({2, 3}, 1);
  save_npy(dir.path / "t.npy", t);
  CHECK(load_npy<double>(dir.path / "t.npy") == t);
  const std::string bytes = read_all(dir.path / "t.npy");
  // numpy.save(np.zeros((2, 3))) writes this 64-byte header (magic, version 1.0, length 118, padded dict).
  CHECK(bytes.substr(0, 10) == std::string("\x93NUMPY\x01\x00\x76\x00", 10));
  const std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
  CHECK(bytes.substr(10, dict.size()) == dict);
  CHECK(bytes.size() == 128 + 6 * 8);
  CHECK(bytes[127] == '\n');
  save_npy(dir.path / "v.npy", Tensor<float>({3}, {1.5f, 2.5f, -1.0f}));
  CHECK(read_all(dir.path / "v.npy").find("'shape': (3,)") != std::string::npos);
  CHECK(load_npy<double>(dir.path / "v.npy") == TD({3}, {1.5, 2.5, -1.0}));  // float32 file, double tensor
  save_npy(dir.path / "s.npy", TD::scalar(4.0));
  CHECK(load_npy<double>(dir.path / "s.npy").rank() == 0);
  save_npy_integer(dir.path / "i.npy", -7);
  CHECK(load_npy_integer(dir.path / "i.npy") == -7);
}

TEST_CASE("corrupt .npy files get errors naming the file") {
  TempDir dir;
  const auto p = dir.path / "bad.npy";
  check_throws_with<io_error>([&] { (void)load_npy<double>(p); }, {"cannot open", "bad.npy"});
  write_all(p, "not numpy at all");
  check_throws_with<io_error>([&] { (void)load_npy<double>(p); }, {"bad.npy", "magic"});
  save_npy(p, TD::ones({4}));
  std::string b = read_all(p);
  write_all(p, b.substr(0, b.size() - 3));
  check_throws_with<io_error>([&] { (void)load_npy<double>(p); }, {"truncated", "32 bytes"});
  write_all(p, b + "xx");
  check_throws_with<io_error>([&] { (void)load_npy<double>(p); }, {"trailing"});
  std::string u8 = b;
  u8.replace(u8.find("<f8"), 3, "|u1");
  write_all(p, u8);
  check_throws_with<io_error>([&] { (void)load_npy<double>(p); }, {"dtype '|u1'"});
  std::string fortran = b;
  fortran.replace(fortran.find("False"), 5, "True ");
  write_all(p, fortran);
  check_throws_with<io_error>([&] { (void)load_npy<double>(p); }, {"Fortran"});
  check_throws_with<io_error>([&] { (void)load_npy_integer(dir.path / "missing.npy"); }, {"cannot open"});
}

TEST_CASE("hostile .npy headers: errors, never a hang, a crash or a huge allocation") {
  // Each header is given as written after the 10-byte preamble of version 1 (or 2, with a 4-byte length).
  auto npy = [](const std::string& dict, int version = 1, const std::string& data = "") {
    std::string out = std::string("\x93NUMPY", 6) + char(version) + '\0';
    const auto n = static_cast<std::uint32_t>(dict.size());
    out += char(n & 0xff);
    out += char((n >> 8) & 0xff);
    if (version >= 2) out += std::string{char((n >> 16) & 0xff), char(n >> 24)};
    return out + dict + data;
  };
  auto load = [](const std::string& bytes) {
    std::istringstream in(bytes);
    return load_npy<double>(in, "x.npy");
  };
  const std::string good = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
  CHECK(load(npy(good, 1, std::string(16, '\0'))) == TD::zeros({2}));
  CHECK(load(npy(good, 2, std::string(16, '\0'))) == TD::zeros({2}));
  CHECK(load(npy("{\"shape\": (), \"fortran_order\": False, \"descr\": \"<f8\"}\n", 3, std::string(8, '\0'))).rank() == 0);
  check_throws_with<io_error>([&] { (void)load(npy("{'descr': '<f8', 'fortran_order': False, 'shape': ")); }, {"x.npy", "malformed"});
  check_throws_with<io_error>([&] { (void)load(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (abc,), }")); },
                              {"x.npy", "malformed shape"});
  check_throws_with<io_error>([&] { (void)load(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (-3,), }")); }, {"malformed shape"});
  check_throws_with<io_error>([&] { (void)load(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,), }")); },
                              {"too large"});
  // Declared far larger than the file: refused before any allocation (2^40 elements would need 8 TiB).
  check_throws_with<io_error>([&] { (void)load(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1048576, 1048576), }", 2)); },
                              {"truncated", "declares"});
  check_throws_with<io_error>([&] { (void)load(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4), }")); },
                              {"too large"});
  check_throws_with<io_error>([&] { (void)load(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }")); },
                              {"more than 4 dimensions"});
  check_throws_with<io_error>([&] { (void)load(npy("{'descr': '<f8', 'shape': (2,), }")); }, {"lacks"});
  check_throws_with<io_error>([&] { (void)load(npy("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2,), }")); }, {"True or False"});
  check_throws_with<io_error>([&] { (void)load(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}")); }, {"unknown key 'x'"});
  check_throws_with<io_error>([&] { (void)load(npy("{'descr': '<f8}")); }, {"unterminated"});
  // A header length beyond the end of the file (version 2 allows 4 GiB) is refused before the header is read.
  std::string huge = npy(good, 2);
  huge[8] = huge[9] = huge[10] = huge[11] = '\xff';
  check_throws_with<io_error>([&] { (void)load(huge); }, {"header length", "truncated"});
  check_throws_with<io_error>([&] { (void)load(npy(good, 4)); }, {"version 4"});
}

TEST_CASE("an optimizer state written by another program (Python's zipfile) loads by its entry names") {
  // fuzz/make_corpus.py writes these archives without metagrad: entry names and values are fixed there.
  const fs::path corpus = fs::path(METAGRAD_SOURCE_DIR) / "fuzz" / "corpus" / "state";
  const auto opt = chain(Adam<>{}, HypergradientStepSize<>{});
  const ParamList<TD> params = {TD::zeros({3, 2}), TD::zeros({4})};
  auto state = opt.init(params);
  load_state(corpus / "valid" / "adam_hd", state);
  CHECK(state.rule.first_moment[0] == TD::full({3, 2}, 0.5));
  CHECK(state.rule.second_moment[1] == TD::full({4}, 0.25));
  CHECK(state.step_size.previous_direction[1] == TD::full({4}, 0.25));
  CHECK(state.step_size.step_size == 1e-3);
  CHECK(state.rule.steps == 1);
  CHECK(state.step_size.steps == 1);
  auto fresh = opt.init(params);
  check_throws_with<io_error>([&] { load_state(corpus / "wrong_shape", fresh); }, {"rule.first_moment[1] has shape [5], expected [4]"});
  check_throws_with<io_error>([&] { load_state(corpus / "extra_entry", fresh); }, {"entry rule.first_moment[2] is not in the tree"});
  check_throws_with<io_error>([&] { load_state(corpus / "float_counter", fresh); }, {"rule.steps holds dtype '<f8'", "int64 expected"});
  check_throws_with<io_error>([&] { load_state(corpus / "truncated", fresh); }, {"not a ZIP archive"});
  CHECK(tree_hash(fresh) == tree_hash(opt.init(params)));
}

TEST_CASE("a composed optimizer's state saves and loads; training resumes bit for bit") {
  TempDir dir;
  const auto opt = chain(Adam<>{}, HypergradientStepSize<>{.initial = 0.01, .beta = 1e-4});
  auto quadratic_grad = [](const TD& p) { return (p - 0.5) * 2.0; };
  ParamList<TD> params = {randn({3, 2}, 5), randn({2}, 6)};
  auto state = opt.init(params);
  auto grads_at = [&](const ParamList<TD>& p) { return ParamList<TD>{quadratic_grad(p[0]), quadratic_grad(p[1])}; };
  for (int t = 0; t < 4; ++t) {
    const auto g = grads_at(params);  // before params is moved into the call
    std::tie(params, state) = opt.step(std::move(params), g, std::move(state));
  }
  save_state(dir.path / "opt.npz", state);
  std::vector<std::string> names;  // one entry per leaf, named by its path
  for (const auto& [name, tensor] : load_npz<double>(dir.path / "opt.npz")) names.push_back(name);
  CHECK(names == std::vector<std::string>{"rule.first_moment[0]", "rule.first_moment[1]", "rule.second_moment[0]", "rule.second_moment[1]",
                                          "rule.steps", "step_size.step_size", "step_size.previous_direction[0]",
                                          "step_size.previous_direction[1]", "step_size.steps"});
  auto restored = opt.init(params);
  load_state(dir.path / "opt.npz", restored);
  CHECK(restored.rule.steps == 4);
  CHECK(restored.step_size.step_size == state.step_size.step_size);
  // Two more steps from each state give identical bits.
  auto a = std::pair{params, state};
  auto b = std::pair{params, restored};
  for (int t = 0; t < 2; ++t) {
    const auto ga = grads_at(a.first), gb = grads_at(b.first);
    a = opt.step(std::move(a.first), ga, std::move(a.second));
    b = opt.step(std::move(b.first), gb, std::move(b.second));
  }
  CHECK(a.first[0] == b.first[0]);
  CHECK(a.first[1] == b.first[1]);
  // Loading into the state of other parameters is refused.
  auto other = opt.init({TD::ones({4}), TD::ones({2})});
  check_throws_with<io_error>([&] { load_state(dir.path / "opt.npz", other); }, {"opt.npz", "rule.first_moment[0] has shape [3, 2], expected [4]"});
  check_throws_with<io_error>([&] { load_state(dir.path / "nowhere.npz", other); }, {"cannot open", "nowhere.npz"});
  // A state of another kind (no hypergradient step size): the archive's entries do not fit its tree.
  auto plain_adam = chain(Adam<>{}, ConstantStepSize<>{0.1}).init(params);
  check_throws_with<io_error>([&] { load_state(dir.path / "opt.npz", plain_adam); }, {"entry step_size.previous_direction[0] is not in the tree"});
  // SGD-HD: the hypergradient's saved direction must fit the parameters too (it once overflowed a buffer).
  const auto sgd_hd = chain(Sgd<>{}, HypergradientStepSize<>{});
  auto hd = sgd_hd.init({TD::ones({5})});
  std::tie(std::ignore, hd) = sgd_hd.step({TD::ones({5})}, {TD::ones({5})}, std::move(hd));
  save_state(dir.path / "hd.npz", hd);
  auto hd_other = sgd_hd.init({TD::ones({50})});
  check_throws_with<io_error>([&] { load_state(dir.path / "hd.npz", hd_other); }, {"previous_direction[0]", "[5]", "[50]"});
  CHECK(hd_other.step_size.previous_direction[0].shape() == Shape{50});  // left as it was
  // A failure in a later field leaves the earlier ones untouched (the strong guarantee).
  auto half = opt.init(params);
  const auto before = half.rule.first_moment[0];
  auto broken = state;
  broken.step_size.step_size = std::nan("");
  save_state(dir.path / "broken.npz", broken);
  check_throws_with<io_error>([&] { load_state(dir.path / "broken.npz", half); }, {"step_size.step_size holds nan", "finite"});
  broken = state;
  broken.rule.steps = -3;
  save_state(dir.path / "broken.npz", broken);
  check_throws_with<io_error>([&] { load_state(dir.path / "broken.npz", half); }, {"rule.steps holds -3", "a count (>= 0) expected"});
  CHECK(half.rule.first_moment[0] == before);
  CHECK(half.rule.steps == 0);
  // Stateless and scheduled parts too.
  const auto sgd = chain(Momentum<>{}, ScheduledStepSize<>{TD({3}, {0.1, 0.2, 0.3})});
  auto s = sgd.init(params);
  std::tie(params, s) = sgd.step(std::move(params), {TD::ones({3, 2}), TD::ones({2})}, std::move(s));
  save_state(dir.path / "sgd.npz", s);
  auto s2 = sgd.init(params);
  load_state(dir.path / "sgd.npz", s2);
  CHECK(s2.step_size.steps == 1);
  CHECK(s2.rule.velocity[0] == s.rule.velocity[0]);
}

}  // TEST_SUITE
