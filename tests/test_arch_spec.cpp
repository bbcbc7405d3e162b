// ArchSpec: canonical form, hash stability, round trips and every bad-input message.
#include <gtest/gtest.h>

#include "common/error.h"
#include "supernet/accounting.h"
#include "supernet/arch_spec.h"
#include "supernet/registry.h"
#include "tests/test_util.h"

namespace flashnas {
namespace {

using test::TempDir;

const char* kSmall = R"({
  "d_model": 64,
  "layers": [{"type": "attn", "n_heads": 4}, {"type": "ffn", "d_ff": 128}]
})";

// Parses `text` expecting an InputError; returns its message.
std::string error_of(const std::string& text) {
  try {
    ArchSpec::parse(text, "arch.json");
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << text;
  return "";
}

TEST(ArchSpec, DefaultsAreFilledInCanonicalForm) {
  const ArchSpec a = ArchSpec::parse(kSmall, "arch.json");
  const json doc = a.to_json();
  EXPECT_EQ(doc["vocab_size"], 256);
  EXPECT_EQ(doc["n_meta_tokens"], 0);
  EXPECT_EQ(doc["tie_embeddings"], false);
  EXPECT_DOUBLE_EQ(doc["norm_eps"].get<double>(), 1e-5);
  EXPECT_EQ(doc["format"], 1);
  const json& attn = doc["layers"][0];
  EXPECT_EQ(attn["type"], "attn");
  EXPECT_EQ(attn["n_heads"], 4);
  EXPECT_EQ(attn["n_kv_heads"], 2);
  EXPECT_EQ(attn["head_dim"], 16);
  EXPECT_DOUBLE_EQ(attn["rope_theta"].get<double>(), 10000.0);
  EXPECT_EQ(doc["layers"][1]["d_ff"], 128);
}

TEST(ArchSpec, FfnDefaultWidthFollowsFla) {
  // ceil(8/3 d) rounded up to 256: d=2048 -> 5632 (the reference's worked value), d=64 -> 256.
  const ArchSpec a = ArchSpec::parse(R"({"d_model": 2048, "layers": [{"type": "ffn"}]})", "x");
  EXPECT_EQ(a.layers[0].hp["d_ff"], 5632);
  const ArchSpec b = ArchSpec::parse(R"({"d_model": 64, "layers": [{"type": "ffn"}]})", "x");
  EXPECT_EQ(b.layers[0].hp["d_ff"], 256);
}

TEST(ArchSpec, HashIsPinnedAndIgnoresKeyOrderNameAndDefaults) {
  const ArchSpec a = ArchSpec::parse(kSmall, "arch.json");
  // The canonical text and its hash are part of the on-disk contract (studies
  // dedup by it): a change here invalidates every stored study.
  EXPECT_EQ(a.canonical_text(),
            R"({"d_model":64,"format":1,"layers":[{"head_dim":16,"n_heads":4,"n_kv_heads":2,"rope_theta":10000.0,)"
            R"("type":"attn"},{"d_ff":128,"type":"ffn"}],"n_meta_tokens":0,"norm_eps":1e-05,"tie_embeddings":false,)"
            R"("vocab_size":256})");
  EXPECT_EQ(a.hash(), "5d52176c13834b07248eb3eba10678bf533844986f4016e15152167d17403cf8");
  const ArchSpec b = ArchSpec::parse(R"({
    "name": "another name", "vocab_size": 256, "norm_eps": 0.00001,
    "layers": [{"n_kv_heads": 2, "type": "attn", "rope_theta": 10000, "n_heads": 4, "head_dim": 16},
               {"d_ff": 128, "type": "ffn"}],
    "d_model": 64, "format": 1})", "other.json");
  EXPECT_EQ(a.hash(), b.hash());
  const ArchSpec c = ArchSpec::parse(R"({"d_model": 64, "layers": [{"type": "attn", "n_heads": 4, "n_kv_heads": 4},
                                       {"type": "ffn", "d_ff": 128}]})", "c.json");
  EXPECT_NE(a.hash(), c.hash());
}

TEST(ArchSpec, OpDefaultsExpandIntoLayers) {
  const ArchSpec a = ArchSpec::parse(R"({"d_model": 64,
      "op_defaults": {"attn": {"n_heads": 4}, "ffn": {"d_ff": 128}},
      "layers": [{"type": "attn"}, {"type": "ffn"}]})", "x");
  EXPECT_EQ(a.hash(), ArchSpec::parse(kSmall, "y").hash());
  EXPECT_FALSE(a.to_json().contains("op_defaults"));
  // A layer's own value wins over op_defaults.
  const ArchSpec b = ArchSpec::parse(R"({"d_model": 64, "op_defaults": {"ffn": {"d_ff": 128}},
      "layers": [{"type": "ffn", "d_ff": 64}]})", "x");
  EXPECT_EQ(b.layers[0].hp["d_ff"], 64);
}

TEST(ArchSpec, SaveLoadRoundTrip) {
  TempDir dir;
  ArchSpec a = ArchSpec::parse(kSmall, "arch.json");
  a.name = "tiny";
  a.save(dir / "a.json");
  const ArchSpec b = ArchSpec::load(dir / "a.json");
  EXPECT_EQ(b.name, "tiny");
  EXPECT_EQ(b.to_json(), a.to_json());
  EXPECT_EQ(b.hash(), a.hash());
  // The canonical form is a fixed point.
  EXPECT_EQ(ArchSpec::from_json(b.to_json(), "again").to_json(), b.to_json());
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"a.json"});
}

TEST(ArchSpec, UnknownOperatorListsValidOnes) {
  EXPECT_EQ(error_of(R"({"d_model": 64, "layers": [{"type": "ffn"}, {"type": "mamba3"}]})"),
            "arch.json: field \"layers[1].type\": unknown operator \"mamba3\"; valid operators: " +
                join_comma(op_names()));
}

TEST(ArchSpec, HeadsMustDivideDModel) {
  EXPECT_EQ(error_of(R"({"d_model": 100, "layers": [{"type": "attn", "n_heads": 8}]})"),
            "arch.json: field \"layers[0].n_heads\": must divide d_model (100) when head_dim is not given, got 8");
}

TEST(ArchSpec, KvHeadsMustDivideHeads) {
  EXPECT_EQ(error_of(R"({"d_model": 64, "layers": [{"type": "attn", "n_heads": 4, "n_kv_heads": 3}]})"),
            "arch.json: field \"layers[0].n_kv_heads\": must divide n_heads (4), got 3");
}

TEST(ArchSpec, SizesOutOfRange) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"d_model": 0, "layers": [{"type": "ffn"}]})", "field \"d_model\": must be an integer in [1, 1048576], got 0"},
      {R"({"d_model": 64, "vocab_size": -5, "layers": [{"type": "ffn"}]})",
       "field \"vocab_size\": must be an integer in [1, 2147483647], got -5"},
      {R"({"d_model": 64, "layers": [{"type": "ffn", "d_ff": -1}]})",
       "field \"layers[0].d_ff\": must be a positive integer, got -1"},
      {R"({"d_model": 64, "norm_eps": 0, "layers": [{"type": "ffn"}]})",
       "field \"norm_eps\": must be a positive finite number, got 0"},
      {R"({"d_model": 64, "n_meta_tokens": -1, "layers": [{"type": "ffn"}]})",
       "field \"n_meta_tokens\": must be an integer in [0, 65536], got -1"},
      // Beyond what flashnas counts without overflow: refused with the limit.
      {R"({"d_model": 1000000000, "layers": [{"type": "ffn"}]})",
       "field \"d_model\": must be an integer in [1, 1048576], got 1000000000"},
      {R"({"d_model": 64, "layers": [{"type": "ffn", "d_ff": 4294967296}]})",
       "field \"layers[0].d_ff\": must be at most 1048576, got 4294967296"},
      // A number beyond a double is a parse error naming the file, not a library exception.
      {R"({"d_model": 64, "layers": [{"type": "attn", "rope_theta": 1e999}]})", "number overflow parsing '1e999'"},
  };
  for (const auto& [text, message] : cases) EXPECT_EQ(error_of(text), "arch.json: " + message) << text;
}

TEST(ArchSpec, AccountingRefusesContextsAndStatesItCannotCount) {
  const ArchSpec a = ArchSpec::parse(R"({"d_model": 64, "layers": [{"type": "attn"}, {"type": "ffn"}]})", "arch.json");
  EXPECT_EQ(account(a, kMaxContext, 4).context, kMaxContext);
  EXPECT_EQ(test::input_error_of([&] { account(a, kMaxContext + 1, 4); }),
            "--context: must be 0..4294967296 tokens, got 4294967297");
  // The largest heads the limits allow at the longest context: the KV cache
  // would need more than 2^63 bytes; the count says so instead of wrapping.
  const ArchSpec wide = ArchSpec::parse(
      R"({"name": "wide", "d_model": 1024, "layers": [{"type": "attn", "n_heads": 1024, "n_kv_heads": 1024, "head_dim": 1048576}]})",
      "arch.json");
  EXPECT_EQ(account(wide, 1024, 4).layers[0].state_bytes, int64_t(2) * 1024 * 1048576 * 1024 * 4);
  EXPECT_EQ(test::input_error_of([&] { account(wide, kMaxContext, 8); }),
            "wide, layers[0] (attn): the decode state at context 4294967296 exceeds what flashnas counts (2^63 bytes)");
}

TEST(ArchSpec, EmptyOrMissingLayers) {
  EXPECT_EQ(error_of(R"({"d_model": 64, "layers": []})"),
            "arch.json: field \"layers\": must not be empty; give at least one sublayer");
  EXPECT_EQ(error_of(R"({"d_model": 64})"), "arch.json: field \"layers\": is required");
  EXPECT_EQ(error_of(R"({"d_model": 64, "layers": {"type": "ffn"}})"),
            "arch.json: field \"layers\": must be an array of sublayers, got object");
}

TEST(ArchSpec, MalformedJsonGivesLineAndColumn) {
  const std::string msg = error_of("{\n  \"d_model\": 64,\n  \"layers\": [\n    {\"type\": \"ffn\",}\n  ]\n}");
  EXPECT_EQ(msg.rfind("arch.json: parse error at line 4, column 20: ", 0), 0u) << msg;
}

TEST(ArchSpec, UnknownFieldsAndBadTypes) {
  EXPECT_EQ(error_of(R"({"d_model": 64, "layers": [{"type": "ffn", "dff": 5}]})"),
            "arch.json: field \"layers[0].dff\": unknown field; allowed fields here are d_ff or type");
  const std::string top = error_of(R"({"d_model": 64, "nlayers": 3, "layers": [{"type": "ffn"}]})");
  EXPECT_EQ(top.rfind("arch.json: field \"nlayers\": unknown field; allowed fields here are ", 0), 0u) << top;
  EXPECT_EQ(error_of(R"({"d_model": "64", "layers": [{"type": "ffn"}]})"),
            "arch.json: field \"d_model\": must be an integer, got \"64\"");
  EXPECT_EQ(error_of(R"({"d_model": 64, "layers": ["ffn"]})"),
            "arch.json: field \"layers[0]\": must be an object like {\"type\": \"attn\", ...}, got \"ffn\"");
  EXPECT_EQ(error_of(R"({"d_model": 64, "format": 2, "layers": [{"type": "ffn"}]})"),
            "arch.json: field \"format\": unsupported ArchSpec format 2; this flashnas reads format 1");
  EXPECT_EQ(error_of(R"({"d_model": 64, "op_defaults": {"rnn": {}}, "layers": [{"type": "ffn"}]})"),
            "arch.json: field \"op_defaults.rnn\": unknown operator \"rnn\"; valid operators: " +
                join_comma(op_names()));
  EXPECT_EQ(error_of("[1, 2]"), "arch.json: document: must be a JSON object, got array");
}

TEST(ArchSpec, ShippedConfigsLoad) {
  for (const char* name : {"demo-tiny.json", "attn-baseline-small.json"}) {
    const ArchSpec a = ArchSpec::load(std::string(test::source_dir()) + "/configs/arch/" + name);
    EXPECT_FALSE(a.layers.empty()) << name;
  }
}

}  // namespace
}  // namespace flashnas
