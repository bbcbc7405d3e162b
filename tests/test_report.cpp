// `flashnas report` (report/study_report.h): the page of a real study opened
// in a real browser (headless Chromium, from Debian's chromium package, which
// scripts/setup.sh installs) renders with no script errors, and its plots
// hold what the database holds: one point per trained trial in each budget's
// frontier plot, one curve per trained trial, one point per held-out
// architecture of the latency table. Bad input names what is wrong and
// writes nothing.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <regex>

#include "common/json_io.h"
#include "profiler/lut.h"
#include "tests/search_fixture.h"

namespace flashnas {
namespace {

namespace fs = std::filesystem;
using test::run_cli;
using test::scalar;
using test::Study;

// The browser: $FLASHNAS_CHROMIUM, else chromium on the PATH.
std::string chromium() {
  if (const char* c = std::getenv("FLASHNAS_CHROMIUM")) return c;
  for (const char* name : {"chromium", "chromium-browser"}) {
    if (std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0) return name;
  }
  return "";
}

// The DOM after the page's scripts ran, as Chromium prints it.
std::string rendered_dom(const fs::path& html, const fs::path& profile) {
  const std::string cmd = "timeout 120 " + chromium() + " --headless --no-sandbox --disable-gpu --user-data-dir='" +
                          profile.string() + "' --dump-dom 'file://" + html.string() + "' 2>/dev/null";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[65536];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(Report, TheStudyPageRendersInChromiumWithWhatTheDatabaseHolds) {
  ASSERT_FALSE(chromium().empty()) << "no chromium on the PATH: the report test needs Debian's chromium package "
                                      "(bash scripts/setup.sh installs it), or FLASHNAS_CHROMIUM=/path/to/browser";
  Study st("algorithm = \"guided\"\npool = 48\nfidelities = [256, 768, 2304]\neta = 2\n");
  const auto r = run_cli(st.search_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The latency table's profile report, with five held-out architectures and a spread.
  {
    LutStore lut(st.db, Access::read_write);
    const int64_t dev = lut.find_device("");
    json rows = json::array();
    for (int i = 0; i < 5; ++i) {
      const double m = 10.0 + 3 * i, p = m * (1 + 0.02 * (i - 2));
      rows.push_back({{"arch", "held-out " + std::to_string(i)}, {"measured_ms", m}, {"predicted_ms", p}, {"error", p / m - 1}});
    }
    json report = *lut.table_report(dev, "float32", "eager");
    report["validation"] = json::array({{{"workload", "batch=1,prompt=16,generate=8"}, {"rows", rows}}});
    report["spread"] = json::array({{{"workload", "batch=1,prompt=16,generate=8"}, {"median_abs_diff", 0.04}}});
    lut.set_table_report(dev, "float32", "eager", report);
  }
  const fs::path html = st.dir / "s.html";
  const auto rep = run_cli({"report", "--db", st.db, "--study", "s", "--out", html.string()});
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  EXPECT_NE(rep.out.find("s.html"), std::string::npos) << rep.out;
  const std::string page = test::slurp(html);
  EXPECT_EQ(page.find("http://"), page.find("http://www.w3.org/2000/svg")) << "the page loads nothing from the network";
  EXPECT_EQ(page.find("<script src"), std::string::npos);

  const std::string dom = rendered_dom(html, st.dir / "chromium-profile");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(dom, m, std::regex("<pre id=\"rendered\">([^<]+)</pre>")))
      << "the page's script did not run in Chromium; the DOM begins: " << dom.substr(0, 400);
  std::string text = m[1].str();
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"&quot;", "\""}, {"&amp;", "&"}}) {
    for (size_t i; (i = text.find(from)) != std::string::npos;) text.replace(i, from.size(), to);
  }
  const json got = json::parse(text);
  EXPECT_TRUE(got["errors"].empty()) << got["errors"].dump();
  const json& plots = got["plots"];
  const int64_t trained = scalar(st.db, "SELECT COUNT(*) FROM trials WHERE status = 'done' AND bpb IS NOT NULL AND genome != ''");
  const int64_t curves = scalar(st.db,
                                "SELECT COUNT(DISTINCT c.trial_id) FROM trial_curves c JOIN trials t ON t.id = c.trial_id"
                                " WHERE t.status = 'done' AND t.bpb IS NOT NULL AND t.genome != ''");
  ASSERT_GT(trained, 4);
  EXPECT_EQ(plots["frontier-0"]["points"].get<int64_t>(), trained) << plots.dump();
  EXPECT_EQ(plots["frontier-0"]["curves"].get<int64_t>(), 1) << "the frontier's step line";
  EXPECT_EQ(plots["curves"]["curves"].get<int64_t>(), curves) << plots.dump();
  EXPECT_EQ(plots["lut-0"]["points"].get<int64_t>(), 5) << plots.dump();
  EXPECT_GE(plots["progress"]["points"].get<int64_t>(), 1) << plots.dump();
  // Every point describes itself on hover.
  size_t circles = 0, titled = 0;
  for (size_t i = 0; (i = page.find("<circle class=\"pt\"", i)) != std::string::npos; ++i) {
    ++circles;
    titled += page.compare(page.find('>', i) + 1, 7, "<title>") == 0;
  }
  EXPECT_EQ(titled, circles);
}

TEST(Report, BadInputNamesWhatIsWrongAndWritesNothing) {
  Study st;
  const fs::path html = st.dir / "x.html";
  auto r = run_cli({"report", "--db", st.db, "--study", "nope", "--out", html.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(html));
  r = run_cli({"report", "--db", st.db, "--study", "nope", "--out", (st.dir / "x.txt").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(st.dir / "x.txt"));
}

}  // namespace
}  // namespace flashnas
