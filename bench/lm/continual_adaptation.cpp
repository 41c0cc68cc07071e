// Continual adaptation of a GPT language model (issue 6): phase A trains on book A, phase B then
// streams book B in reading order; every `--every-tokens` tokens the held-out tail of both books is
// scored, so the log shows how fast each learner adapts to B and how much of A it forgets.
// Evaluations are spaced in tokens, not steps, so learners with different batch sizes are logged
// alike.
//
//   kwm_lm_continual --config configs/lm_tiny.yaml [--book-a huckfinn] [--book-b sherlock]
//                    [--tokens-a 100000] [--tokens-b 100000] [--every-tokens 4096]
//                    [--eval-tokens 4096] [--heldout 0.1] [--dir data/text] [--out FILE.jsonl]
//
// The config is a kwm LM run config; its model, learner and train.{batch,length,seed,
// head_bias_init} are used, its data section is not: the tokenizer is always bytes (vocabulary
// 256) and the books are read from --dir. Each book's last --heldout fraction (cut at a line start)
// is never trained on. Output: JSON lines, a "start" line with the unigram references, then one
// line per evaluation.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/lm/cross_entropy.hpp"
#include "core/lm/gpt_config.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/learner_factory.hpp"
#include "core/lm/learners/unigram_baseline.hpp"
#include "core/text/byte_tokenizer.hpp"
#include "core/text/corpus.hpp"

namespace {

struct Options {
  std::string config;
  std::string dir = "data/text";
  std::string book_a = "huckfinn";
  std::string book_b = "sherlock";
  std::int64_t tokens_a = 100000;
  std::int64_t tokens_b = 100000;
  std::int64_t every_tokens = 4096;
  std::int64_t eval_tokens = 4096;
  double heldout = 0.1;
  std::string out;
};

// A bad command line or config: printed with the usage hint, exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::int64_t positive_integer(const std::string& flag, const std::string& text) {
  std::size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value <= 0)
    throw UsageError(flag + " must be a positive integer; got '" + text + "'");
  return value;
}

Options parse_options(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw UsageError(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--config") {
      opt.config = value;
    } else if (flag == "--dir") {
      opt.dir = value;
    } else if (flag == "--book-a") {
      opt.book_a = value;
    } else if (flag == "--book-b") {
      opt.book_b = value;
    } else if (flag == "--tokens-a") {
      opt.tokens_a = positive_integer(flag, value);
    } else if (flag == "--tokens-b") {
      opt.tokens_b = positive_integer(flag, value);
    } else if (flag == "--every-tokens") {
      opt.every_tokens = positive_integer(flag, value);
    } else if (flag == "--eval-tokens") {
      opt.eval_tokens = positive_integer(flag, value);
    } else if (flag == "--heldout") {
      try {
        opt.heldout = std::stod(value);
      } catch (const std::exception&) {
        opt.heldout = -1.0;
      }
      if (!(opt.heldout > 0.0 && opt.heldout < 1.0))
        throw UsageError("--heldout must be a fraction in (0, 1); got '" + value + "'");
    } else if (flag == "--out") {
      opt.out = value;
    } else {
      throw UsageError("unknown option " + flag);
    }
  }
  if (opt.config.empty()) throw UsageError("--config FILE is required");
  if (opt.book_a == opt.book_b) throw UsageError("--book-a and --book-b must differ");
  return opt;
}

// One book, tokenized: the training part (before the held-out tail) and the held-out tail.
struct Book {
  std::vector<std::int32_t> train;
  std::vector<std::int32_t> heldout;
};

Book load_book(const Options& opt, const std::string& name) {
  const std::string text = kwm::text::prepare_book(kwm::text::find_book(opt.dir, name));
  const kwm::text::ByteTokenizer bytes;
  Book book;
  book.train = bytes.encode(kwm::text::book_part(text, 0.0, 1.0 - opt.heldout));
  book.heldout = bytes.encode(kwm::text::book_part(text, 1.0 - opt.heldout, 1.0));
  return book;
}

// Mean NLL over evenly spaced, non-overlapping windows of `tokens` (the rule of kwm train's
// validation), so every evaluation of a run scores exactly the same tokens.
double heldout_nll(const kwm::lm::GptParameters<double>& parameters,
                   const std::vector<std::int32_t>& tokens, int length, std::int64_t max_tokens) {
  const auto n = static_cast<std::int64_t>(tokens.size());
  const int T = static_cast<int>(std::min<std::int64_t>(length, n - 1));
  const std::int64_t available = (n - 1) / T;
  const std::int64_t windows = std::clamp<std::int64_t>((max_tokens + T - 1) / T, 1, available);
  constexpr std::int64_t kWindowsPerForward = 16;
  double total = 0.0, count = 0.0;
  for (std::int64_t k0 = 0; k0 < windows; k0 += kWindowsPerForward) {
    kwm::lm::TokenBatch batch;
    batch.batch = static_cast<int>(std::min(kWindowsPerForward, windows - k0));
    batch.length = T;
    for (std::int64_t k = k0; k < k0 + batch.batch; ++k) {
      const auto begin = tokens.begin() + (k * available / windows) * T;
      batch.inputs.insert(batch.inputs.end(), begin, begin + T);
      batch.targets.insert(batch.targets.end(), begin + 1, begin + T + 1);
    }
    const auto logits = kwm::lm::forward<double>(parameters, batch, nullptr);
    total += kwm::lm::cross_entropy<double>(logits, batch.targets).total_nll;
    count += static_cast<double>(batch.targets.size());
  }
  return total / count;
}

// Phase A draws random windows (as kwm train does); phase B reads its book in order, window
// after window, as a stream would deliver it (wrapping at the end).
class WindowSource {
 public:
  WindowSource(const std::vector<std::int32_t>& tokens, int batch, int length, bool in_order,
               std::uint64_t seed)
      : tokens_(tokens), batch_(batch), length_(length), in_order_(in_order), random_(seed) {
    if (static_cast<std::int64_t>(tokens.size()) < length + 1)
      throw UsageError("a book's training part is shorter than one window");
  }

  kwm::lm::TokenBatch next() {
    kwm::lm::TokenBatch b;
    b.batch = batch_;
    b.length = length_;
    const std::size_t last_start = tokens_.size() - static_cast<std::size_t>(length_) - 1;
    std::uniform_int_distribution<std::size_t> start(0, last_start);
    for (int s = 0; s < batch_; ++s) {
      std::size_t at = 0;
      if (in_order_) {
        if (cursor_ > last_start) cursor_ = 0;
        at = cursor_;
        cursor_ += static_cast<std::size_t>(length_);
      } else {
        at = start(random_);
      }
      const auto begin = tokens_.begin() + static_cast<std::ptrdiff_t>(at);
      b.inputs.insert(b.inputs.end(), begin, begin + length_);
      b.targets.insert(b.targets.end(), begin + 1, begin + length_ + 1);
    }
    return b;
  }

 private:
  const std::vector<std::int32_t>& tokens_;
  int batch_;
  int length_;
  bool in_order_;
  std::mt19937_64 random_;
  std::size_t cursor_ = 0;
};

int run(const Options& opt) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(opt.config);
  } catch (const YAML::Exception& e) {
    throw UsageError(opt.config + ": " + e.what());
  }
  if (!root["model"] || !root["learner"])
    throw UsageError(opt.config + ": needs model: and learner: sections");
  YAML::Node model = YAML::Clone(root["model"]);
  model.remove("type");
  model["vocab_size"] = 256;
  const kwm::lm::GptConfig gpt = kwm::lm::parse_gpt_config(model);
  const YAML::Node train = root["train"];
  const int batch = train && train["batch"] ? train["batch"].as<int>() : 8;
  const int length = train && train["length"] && train["length"].as<int>() > 0
                         ? train["length"].as<int>()
                         : gpt.context;
  const auto seed = train && train["seed"] ? train["seed"].as<std::uint64_t>() : 1;

  const Book a = load_book(opt, opt.book_a);
  const Book b = load_book(opt, opt.book_b);
  auto learner = kwm::lm::make_language_learner(root["learner"], gpt, seed, {});
  // train.head_bias_init: unigram, as kwm train: the log unigram of book A's training part (the
  // only text seen before phase B).
  const std::string bias_init = train && train["head_bias_init"]
                                    ? train["head_bias_init"].as<std::string>()
                                    : std::string("zero");
  if (bias_init == "unigram")
    learner->shift_head_bias(kwm::lm::unigram_log_prior(a.train, 256));
  else if (bias_init != "zero")
    throw UsageError(opt.config + ": train.head_bias_init must be zero or unigram; got '" +
                     bias_init + "'");

  std::ofstream file;
  if (!opt.out.empty()) {
    file.open(opt.out, std::ios::trunc);
    if (!file) throw UsageError(opt.out + ": cannot write");
  }
  std::ostream& out = opt.out.empty() ? std::cout : file;
  out << nlohmann::json{{"event", "start"},
                        {"config", opt.config},
                        {"learner", learner->name()},
                        {"derivatives", learner->derivative_label()},
                        {"parameters", kwm::lm::parameter_count(gpt)},
                        {"book_a", opt.book_a},
                        {"book_b", opt.book_b},
                        {"train_tokens_a", a.train.size()},
                        {"train_tokens_b", b.train.size()},
                        {"heldout_tokens_a", a.heldout.size()},
                        {"heldout_tokens_b", b.heldout.size()},
                        {"tokens_per_step", std::int64_t{batch} * length},
                        {"head_bias_init", bias_init},
                        {"unigram_a_on_a", kwm::lm::unigram_nll(a.train, a.heldout, 256)},
                        {"unigram_a_on_b", kwm::lm::unigram_nll(a.train, b.heldout, 256)},
                        {"unigram_b_on_b", kwm::lm::unigram_nll(b.train, b.heldout, 256)}}
             .dump()
      << "\n";

  const std::int64_t per_step = std::int64_t{batch} * length;
  const std::int64_t steps_a = std::max<std::int64_t>(1, opt.tokens_a / per_step);
  const std::int64_t steps_b = std::max<std::int64_t>(1, opt.tokens_b / per_step);
  const std::int64_t every = std::max<std::int64_t>(1, opt.every_tokens / per_step);
  WindowSource source_a(a.train, batch, length, false, seed);
  WindowSource source_b(b.train, batch, length, true, seed);
  const auto started = std::chrono::steady_clock::now();
  std::int64_t step = 0, tokens = 0, forward_passes = 0, tj_passes = 0;
  double window_nll = 0.0, window_tokens = 0.0;
  const auto log = [&](const char* phase) {
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    nlohmann::json line = {
        {"phase", phase},
        {"step", step},
        {"tokens", tokens},
        {"wall_s", wall},
        {"heldout_a_nll", heldout_nll(learner->parameters(), a.heldout, length, opt.eval_tokens)},
        {"heldout_b_nll", heldout_nll(learner->parameters(), b.heldout, length, opt.eval_tokens)},
        {"forward_passes", forward_passes},
        {"transposed_jacobian_passes", tj_passes}};
    if (window_tokens > 0) line["train_nll"] = window_nll / window_tokens;
    out << line.dump() << "\n" << std::flush;
    window_nll = window_tokens = 0.0;
  };
  log("A");
  for (const char* phase : {"A", "B"}) {
    const bool in_a = phase[0] == 'A';
    const std::int64_t steps = in_a ? steps_a : steps_b;
    for (std::int64_t s = 1; s <= steps; ++s) {
      const kwm::lm::StepReport report = learner->step((in_a ? source_a : source_b).next());
      ++step;
      tokens += report.tokens;
      forward_passes += report.forward_passes;
      tj_passes += report.transposed_jacobian_passes;
      window_nll += report.nll_before * static_cast<double>(report.tokens);
      window_tokens += static_cast<double>(report.tokens);
      if (s % every == 0 || s == steps) log(phase);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_options(argc, argv));
  } catch (const UsageError& e) {
    std::cerr << "kwm_lm_continual: " << e.what() << "\n";
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "kwm_lm_continual: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "kwm_lm_continual: " << e.what() << "\n";
    return 1;
  }
}
