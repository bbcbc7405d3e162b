// common/: hashing, atomic files, JSON field errors, device and dtype parsing.
#include <gtest/gtest.h>

#include <fstream>

#include "common/device.h"
#include "common/error.h"
#include "common/files.h"
#include "common/format.h"
#include "common/json_io.h"
#include "common/sha256.h"
#include "common/threads.h"
#include "tests/test_util.h"

namespace flashnas {
namespace {

using test::TempDir;

TEST(Sha256, KnownVectors) {
  // FIPS 180-4 examples, including the two-block padding case (56 bytes).
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Files, AtomicWriteReplacesAndLeavesNoTemporaries) {
  TempDir dir;
  write_file_atomic(dir / "a.txt", "first");
  write_file_atomic(dir / "a.txt", "second");
  EXPECT_EQ(read_file(dir / "a.txt"), "second");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"a.txt"});
}

TEST(Files, AtomicWriteIntoMissingDirectoryFailsCleanly) {
  TempDir dir;
  try {
    write_file_atomic(dir / "nope" / "a.txt", "x");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Files, ReadErrorsNameThePath) {
  TempDir dir;
  try {
    read_file(dir / "missing.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.json: no such file"), std::string::npos) << e.what();
  }
  try {
    read_file(dir.path());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
}

TEST(Json, ParseErrorGivesLineAndColumn) {
  try {
    parse_json("{\n  \"a\": 1,\n  \"b\": ]\n}", "spec.json");
    FAIL();
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("spec.json: parse error at line 3, column 8"), std::string::npos) << msg;
  }
}

TEST(Json, FieldReaderTypesRangesAndUnknownKeys) {
  const json doc = json::parse(R"({"n": 3, "neg": -1, "f": 2.5, "s": "x", "b": true, "extra": 1})");
  FieldReader r(doc, "cfg.json", "block");
  EXPECT_EQ(r.positive("n"), 3);
  EXPECT_EQ(r.positive("missing", 7), 7);
  EXPECT_DOUBLE_EQ(r.positive_number("f"), 2.5);
  EXPECT_EQ(r.string("s"), "x");
  EXPECT_TRUE(r.boolean("b"));
  try {
    r.positive("neg");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "cfg.json: field \"block.neg\": must be a positive integer, got -1");
  }
  try {
    r.integer("f");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "cfg.json: field \"block.f\": must be an integer, got 2.5");
  }
  try {
    r.finish();
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("field \"block.extra\": unknown field"), std::string::npos) << e.what();
  }
}

TEST(Device, ParsesCpuAndRejectsUnknown) {
  EXPECT_TRUE(parse_device("cpu").is_cpu());
  try {
    parse_device("tpu");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "--device: unknown device \"tpu\"; allowed: cpu, cuda, cuda:N");
  }
  if (!cuda_available()) {
    EXPECT_THROW(parse_device("cuda:0"), Error);
  }
}

TEST(Device, DtypesAndFingerprint) {
  EXPECT_EQ(parse_dtype("bf16"), torch::kBFloat16);
  EXPECT_EQ(parse_dtype("float64"), torch::kFloat64);
  EXPECT_EQ(dtype_bytes(torch::kBFloat16), 2);
  EXPECT_THROW(parse_dtype("int8"), InputError);
  const DeviceInfo info = describe_device(torch::Device(torch::kCPU));
  EXPECT_EQ(info.device, "cpu");
  EXPECT_GT(info.threads, 0);
  EXPECT_FALSE(info.name.empty());
  EXPECT_NE(info.fingerprint().find("threads=" + std::to_string(info.threads)), std::string::npos);
}

TEST(Format, HumanNumbers) {
  EXPECT_EQ(with_commas(1234567), "1,234,567");
  EXPECT_EQ(with_commas(999), "999");
  EXPECT_EQ(format_count(2.7e9), "2.70B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_flops(2.1e9), "2.10 GFLOP");
}

// Thread counts: a request is checked against the CPUs this process may use;
// without one, the CPUs are shared among the workers, at least one each.
TEST(Threads, ARequestIsCheckedAndTheDefaultSharesTheCpusAmongWorkers) {
  const int cpus = available_cpus();
  ASSERT_GE(cpus, 1);
  EXPECT_EQ(threads_per_worker(0, 1, "--threads"), cpus);
  EXPECT_EQ(threads_per_worker(0, 2, "--threads"), std::max(1, cpus / 2));
  EXPECT_EQ(threads_per_worker(0, cpus + 5, "--threads"), 1);
  EXPECT_EQ(threads_per_worker(1, 8, "--threads"), 1);
  try {
    threads_per_worker(cpus + 1, 1, "--threads");
    FAIL() << "more threads than CPUs must be refused";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--threads: " + std::to_string(cpus + 1) + " threads; this process may run on"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(threads_per_worker(-1, 1, "--threads"), InputError);
}

}  // namespace
}  // namespace flashnas
