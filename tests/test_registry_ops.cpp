// Every registered operator, checked from what its registry entry declares
// (supernet/ops/op_kind.h, OpTesting): nothing here names an operator, so an
// operator added to the registry is checked by every test below.
//
// Per test case (its hyperparameters at d_model 16) and dtype:
//  - the parallel/chunked forward equals the step recurrence token by token,
//    from an empty state and from a random one, at lengths 16 (a multiple of
//    the chunk of 8), 21 (not a multiple) and 3 (shorter than a chunk), and
//    leaves the same state;
//  - a prefill followed by decode steps equals one forward;
//  - finite differences agree with autograd through the chunked forms (float64);
//  - the accounting's parameter count equals the built module's, the
//    weight-normalization roles name matrices of the right shapes, and the
//    canonical hyperparameters are a fixed point of canonicalisation.
// Per operator: every declared field is refused by name when out of range.
//
// Tolerances are the entry's (default: float64 1e-10 absolute, float32 1e-4
// relative to the output's scale; see tests/test_mixers.cpp for why).
#include <gtest/gtest.h>

#include <set>

#include "supernet/arch_spec.h"
#include "supernet/registry.h"
#include "tests/test_util.h"

namespace flashnas {
namespace {

using test::numeric_error;
constexpr int64_t kD = kOpTestDModel;

struct Case {
  std::string type;
  size_t index = 0;
  const OpKind& kind() const { return find_op_kind(type, "test"); }
  json hp() const { return kind().testing.cases.at(index); }
  std::string name() const { return type + std::to_string(index); }
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name(); }

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const auto& k : op_kinds()) {
    for (size_t i = 0; i < k.testing.cases.size(); ++i) cases.push_back({k.name, i});
  }
  return cases;
}

LayerSpec layer_of(const Case& c) {
  json hp = c.hp();
  hp["type"] = c.type;
  return ArchSpec::parse_layer(hp, kD, "test", c.name());
}

std::shared_ptr<Operator> make_op(const Case& c, torch::ScalarType dt) {
  const LayerSpec l = layer_of(c);
  auto op = make_operator(l.type, l.hp, kD);
  op->to(dt);
  return op;
}

double tol(const OpKind& k, torch::ScalarType dt) { return dt == torch::kFloat64 ? k.testing.tol_f64 : k.testing.tol_f32; }

// A random, non-trivial state after 7 tokens: recurrent buffers drawn at
// random; caches filled by running 7 random tokens through the operator.
OpState random_state(Operator& op, StateKind kind, int64_t B, int64_t cap, torch::ScalarType dt) {
  OpState st = op.init_state(B, cap, dt);
  torch::NoGradGuard no_grad;
  if (kind == StateKind::cache) {
    op.forward(torch::randn({B, 7, kD}, torch::dtype(dt)), &st);
  } else {
    for (auto& [name, t] : st.buffers) t.copy_(torch::randn_like(t) * 0.5);
    st.pos = 7;
  }
  return st;
}

torch::Tensor step_loop(Operator& op, const torch::Tensor& x, OpState& st) {
  std::vector<torch::Tensor> ys;
  for (int64_t t = 0; t < x.size(1); ++t) ys.push_back(op.step(x.select(1, t), st));
  return torch::stack(ys, 1);
}

TEST(RegistryOps, EveryOperatorDeclaresTestCasesThatParse) {
  for (const auto& k : op_kinds()) {
    EXPECT_FALSE(k.testing.cases.empty()) << k.name << " declares no test cases";
    EXPECT_FALSE(k.fields.empty()) << k.name << " declares no fields";
    for (size_t i = 0; i < k.testing.cases.size(); ++i) EXPECT_NO_THROW(layer_of({k.name, i})) << k.name << " case " << i;
  }
}

class OpDtype : public ::testing::TestWithParam<std::tuple<Case, torch::ScalarType>> {};

TEST_P(OpDtype, ForwardEqualsStepsAndPrefillThenDecodeEqualsOneForward) {
  const auto& [c, dt] = GetParam();
  const OpKind& k = c.kind();
  const double eps = tol(k, dt);
  auto op = make_op(c, dt);
  torch::NoGradGuard no_grad;
  const int64_t B = 2;
  for (int64_t T : {16, 21, 3}) {
    torch::manual_seed(T * 7 + int64_t(c.index));
    auto x = torch::randn({B, T, kD}, torch::dtype(dt));
    // From an empty state: forward without a state equals stepping from init_state.
    auto full = op->forward(x, nullptr);
    OpState fresh = op->init_state(B, T + 8, dt);
    EXPECT_LE(numeric_error(step_loop(*op, x, fresh), full), eps) << c.name() << " T=" << T << " from empty";
    // From a random state: forward with it equals stepping, and leaves the same state.
    OpState s1 = random_state(*op, k.testing.state, B, T + 16, dt);
    OpState s2 = clone_state(s1);
    auto par = op->forward(x, &s1);
    EXPECT_LE(numeric_error(step_loop(*op, x, s2), par), eps) << c.name() << " T=" << T << " from a random state";
    EXPECT_EQ(s1.pos, s2.pos);
    for (const auto& [name, t] : s1.buffers) {
      EXPECT_LE(numeric_error(t, s2.buffers.at(name)), eps) << c.name() << " T=" << T << " state " << name;
    }
    // Prefill of the first T - 2 tokens (forward with a state), then decode steps.
    const int64_t P = std::max<int64_t>(1, T - 2);
    OpState st = op->init_state(B, T, dt);
    std::vector<torch::Tensor> parts = {op->forward(x.narrow(1, 0, P), &st)};
    if (T > P) parts.push_back(step_loop(*op, x.narrow(1, P, T - P), st));
    EXPECT_LE(numeric_error(torch::cat(parts, 1), full), eps) << c.name() << " T=" << T << " prefill " << P << " then decode";
    EXPECT_EQ(st.pos, T);
  }
}

std::string case_name(const Case& c) { return c.name(); }

INSTANTIATE_TEST_SUITE_P(Registry, OpDtype,
                         ::testing::Combine(::testing::ValuesIn(all_cases()),
                                            ::testing::Values(torch::kFloat64, torch::kFloat32)),
                         [](const auto& info) {
                           return case_name(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) == torch::kFloat64 ? "_f64" : "_f32");
                         });

class Op : public ::testing::TestWithParam<Case> {};

// Finite differences in float64 against autograd through the chunked forms
// (T = 11 spans two chunks of 8).
TEST_P(Op, GradientsMatchFiniteDifferences) {
  const Case c = GetParam();
  torch::manual_seed(40 + int64_t(c.index));
  auto op = make_op(c, torch::kFloat64);
  auto x = torch::randn({1, 11, kD}, torch::kFloat64).requires_grad_(true);
  auto w = torch::randn({1, 11, kD}, torch::kFloat64);
  auto loss = [&] { return (op->forward(x, nullptr) * w).sum(); };
  std::vector<torch::Tensor> wrt = {x};
  for (const auto& p : op->parameters()) wrt.push_back(p);
  EXPECT_LE(test::gradcheck_max_rel_err(loss, wrt, 1e-6, 24), 1e-6) << c.name();
}

TEST_P(Op, AccountingRolesAndCanonicalFormAgreeWithTheModule) {
  const Case c = GetParam();
  const OpKind& k = c.kind();
  const LayerSpec l = layer_of(c);
  auto op = make_operator(l.type, l.hp, kD);
  int64_t numel = 0;
  auto params = op->named_parameters();
  for (const auto& p : params) numel += p.value().numel();
  EXPECT_EQ(k.cost(l.hp, ModelDims{kD}).params, numel) << c.name();
  // Weight normalization: readers are [out, d_model], writers [d_model, in].
  const ResidualRoles roles = k.residual_roles(l.hp);
  EXPECT_FALSE(roles.reads.empty() || roles.writes.empty()) << c.name();
  for (const auto& name : roles.reads) {
    ASSERT_TRUE(params.contains(name)) << c.name() << " reads " << name;
    EXPECT_EQ(params[name].dim(), 2) << name;
    EXPECT_EQ(params[name].size(1), kD) << c.name() << " " << name;
  }
  for (const auto& name : roles.writes) {
    ASSERT_TRUE(params.contains(name)) << c.name() << " writes " << name;
    EXPECT_EQ(params[name].dim(), 2) << name;
    EXPECT_EQ(params[name].size(0), kD) << c.name() << " " << name;
  }
  // Canonical hyperparameters hold exactly the declared fields and are a fixed point.
  std::set<std::string> keys, declared;
  for (auto it = l.hp.begin(); it != l.hp.end(); ++it) keys.insert(it.key());
  for (const auto& f : k.fields) declared.insert(f.key);
  EXPECT_EQ(keys, declared) << c.name();
  json again = l.hp;
  again["type"] = c.type;
  EXPECT_EQ(ArchSpec::parse_layer(again, kD, "test", "again").hp, l.hp) << c.name();
  EXPECT_FALSE(k.summary(l.hp).empty());
}

INSTANTIATE_TEST_SUITE_P(Registry, Op, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) { return case_name(info.param); });

// Every declared field refuses a value out of its range, naming the field.
TEST(RegistryOps, EveryFieldRefusesABadValueByName) {
  for (const auto& k : op_kinds()) {
    for (const auto& f : k.fields) {
      json layer = k.testing.cases.at(0);
      layer["type"] = k.name;
      switch (f.type) {
        case HpField::Type::integer: layer[f.key] = f.min - 1; break;
        case HpField::Type::positive_number: layer[f.key] = -1.5; break;
        case HpField::Type::boolean: layer[f.key] = 3; break;
      }
      const std::string msg = test::input_error_of([&] { ArchSpec::parse_layer(layer, kD, "arch.json", "layers[0]"); });
      EXPECT_NE(msg.find("arch.json: field \"layers[0]." + f.key + "\""), std::string::npos) << k.name << ": " << msg;
    }
    json layer = k.testing.cases.at(0);
    layer["type"] = k.name;
    layer["no_such_field"] = 1;
    const std::string msg = test::input_error_of([&] { ArchSpec::parse_layer(layer, kD, "arch.json", "layers[0]"); });
    EXPECT_NE(msg.find("no_such_field"), std::string::npos) << k.name << ": " << msg;
  }
}

}  // namespace
}  // namespace flashnas
