// Reads index.h5 and every rank-R.h5 of a language-model checkpoint through their Fletcher32
// checksums; a failure is reported per file, so one corrupt rank file does not hide the others.
#include "launch/lm/lm_inspect.hpp"

#include <fmt/format.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "distributed/checkpoint/hdf5_file.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {
namespace fs = std::filesystem;
using checkpoint::Hdf5File;

bool is_lm_checkpoint(const fs::path& dir) {
  if (!fs::exists(dir / "index.h5")) return false;
  try {
    return Hdf5File::open(dir / "index.h5").string_attribute("/", "kind") == "language-model";
  } catch (const std::exception&) {
    return false;  // not an LM index (or unreadable): the time-series inspector reports it
  }
}

namespace {

// One rank file: its tensors (name -> shape) and counters; throws on a failed checksum.
nlohmann::json inspect_rank_file(const fs::path& path) {
  const auto file = Hdf5File::open(path);
  nlohmann::json tensors = nlohmann::json::object();
  if (file.exists("/state"))
    for (const std::string& name : file.verify_all("/state")) {
      const auto [rows, cols] = file.shape(name);
      tensors[name.substr(std::string("/state/").size())] = {rows, cols};
    }
  const std::int64_t declared = file.int_attribute("/", "tensors");
  if (declared != static_cast<std::int64_t>(tensors.size()))
    throw std::runtime_error(path.string() + ": declares " + std::to_string(declared) +
                             " tensors, holds " + std::to_string(tensors.size()));
  nlohmann::json counters = nlohmann::json::object();
  const std::string text = file.read_bytes("/counters");
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = std::min(text.find('\n', at), text.size());
    const std::string line = text.substr(at, end - at);
    const std::size_t eq = line.rfind('=');
    if (eq == std::string::npos) throw std::runtime_error(path.string() + ": malformed /counters");
    counters[line.substr(0, eq)] = line.substr(eq + 1);
    at = end + 1;
  }
  return {{"tensors", tensors}, {"counters", counters}};
}

std::string human_report(const fs::path& dir, const nlohmann::json& r) {
  std::string out = fmt::format(
      "language-model checkpoint {}: step {}, {} tokens, learner {}, written by {} rank(s), "
      "format version {}\n",
      dir.string(), r.value("step", -1), r.value("tokens", -1),
      r.value("learner", std::string("?")), r.value("world_size", -1),
      r.value("format_version", -1));
  if (r.contains("cursor"))
    out += fmt::format("  data cursor: epoch {}, window {}, random draws {}\n",
                       r["cursor"]["epoch"].get<std::int64_t>(),
                       r["cursor"]["position"].get<std::int64_t>(),
                       r["cursor"]["draws"].get<std::int64_t>());
  if (r.contains("tokenizer_fingerprint"))
    out += fmt::format("  tokenizer {}\n", r["tokenizer_fingerprint"].get<std::string>());
  if (r.contains("ranks"))
    for (const auto& [file, part] : r["ranks"].items()) {
      out += fmt::format("  {}: {} tensors\n", file, part["tensors"].size());
      for (const auto& [name, shape] : part["tensors"].items())
        out += fmt::format("    {:<28} {} x {}\n", name, shape[0].get<std::int64_t>(),
                           shape[1].get<std::int64_t>());
      std::string counters;
      for (const auto& [name, value] : part["counters"].items())
        counters += fmt::format(" {}={}", name, value.get<std::string>());
      if (!counters.empty()) out += "    counters:" + counters + "\n";
    }
  for (const auto& [file, status] : r["checksums"].items())
    out += fmt::format("  {}: {}\n", file, status.get<std::string>());
  return out;
}

}  // namespace

int inspect_lm_checkpoint(const fs::path& dir, const OutputMode& output) {
  nlohmann::json r = {
      {"command", "inspect"}, {"checkpoint", dir.string()}, {"kind", "language-model"}};
  r["checksums"] = nlohmann::json::object();
  bool ok = true;
  try {
    const auto index = Hdf5File::open(dir / "index.h5");
    r["format_version"] = index.int_attribute("/", "format_version");
    r["step"] = index.int_attribute("/", "step");
    r["tokens"] = index.int_attribute("/", "tokens");
    r["learner"] = index.string_attribute("/", "learner");
    r["world_size"] = index.int_attribute("/", "world_size");
    r["git_revision"] = index.string_attribute("/", "git_revision");
    r["tokenizer_fingerprint"] = index.string_attribute("/", "tokenizer_fingerprint");
    r["cursor"] = {{"epoch", index.int_attribute("/", "cursor_epoch")},
                   {"position", index.int_attribute("/", "cursor_position")},
                   {"draws", index.int_attribute("/", "cursor_draws")}};
    r["config"] = index.read_bytes("/config/yaml");
    index.verify_all();
    r["checksums"]["index.h5"] = "ok";
  } catch (const std::exception& e) {
    r["checksums"]["index.h5"] = e.what();
    ok = false;
  }
  if (ok) {
    r["ranks"] = nlohmann::json::object();
    for (std::int64_t rank = 0; rank < r["world_size"].get<std::int64_t>(); ++rank) {
      const std::string name = fmt::format("rank-{}.h5", rank);
      try {
        if (!fs::exists(dir / name)) throw std::runtime_error((dir / name).string() + ": missing");
        r["ranks"][name] = inspect_rank_file(dir / name);
        r["checksums"][name] = "ok";
      } catch (const std::exception& e) {
        r["checksums"][name] = e.what();
        ok = false;
      }
    }
  }
  r["ok"] = ok;
  print_result(output, r, human_report(dir, r));
  if (ok) return 0;
  std::string failures;
  for (const auto& [file, status] : r["checksums"].items())
    if (status != "ok") failures += (failures.empty() ? "" : "; ") + status.get<std::string>();
  throw UserError(failures);
}

}  // namespace kwm::launch
