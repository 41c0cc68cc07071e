// The language-model training loop: step, log the prequential (before-update) loss, validate
// every eval_every steps, checkpoint every checkpoint_every steps or on SIGTERM/SIGUSR1, then
// score the test split and write model.h5.
#include "launch/lm/lm_training.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/lm/gpt_config.hpp"
#include "core/lm/learners/learner_factory.hpp"
#include "core/lm/learners/unigram_baseline.hpp"
#include "core/text/token_loader.hpp"
#include "launch/atomic_file.hpp"
#include "launch/lm/lm_checkpoint.hpp"
#include "launch/lm/lm_data.hpp"
#include "launch/lm/lm_evaluation.hpp"
#ifdef KWM_HAVE_LM_CUDA
#include "launch/lm/lm_device_scoring.hpp"
#endif
#include "launch/lm/lm_model_file.hpp"
#include "launch/lm/lm_run_config.hpp"
#include "launch/training/run_directory.hpp"
#include "launch/user_error.hpp"

#ifdef KWM_HAVE_LM_CUDA
#include <cuda_runtime.h>

#include "core/lm/cuda/ensemble_cuda_learner.hpp"
#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/cuda/kwm_linearized_cuda_learner.hpp"
#include "core/lm/cuda/mezo_cuda_learner.hpp"
#include "core/lm/cuda/rls_head_cuda_learner.hpp"
#include "launch/lm/lm_device_collectives.hpp"
#endif

namespace kwm::launch {
namespace {

volatile std::sig_atomic_t g_lm_stop = 0;
extern "C" void request_lm_checkpoint_and_stop(int) { g_lm_stop = 1; }

lm::LmCollectives collectives_of(Communicator& world) {
  lm::LmCollectives c;
  c.rank = world.rank();
  c.ranks = world.size();
  if (world.size() == 1) return c;
  c.all_reduce_sum = [&world](double* data, std::size_t count) {
    world.all_reduce_sum(data, count);
  };
  c.broadcast = [&world](double* data, std::size_t count, int root) {
    world.broadcast(data, count, root);
  };
  c.any = [&world](bool flag) { return world.all_reduce_any(flag); };
  return c;
}

// learner.device: cuda: the GPU learner (see docs/gpu-lm.md). Several ranks: one GPU each, the
// device sums through NCCL or the host (lm_device_collectives.hpp).
std::unique_ptr<lm::LanguageLearner> make_cuda_learner(const LmRunConfig& config,
                                                       const lm::GptConfig& gpt,
                                                       Communicator& world,
                                                       const std::string& source) {
#ifdef KWM_HAVE_LM_CUDA
  if (!lm::cuda::device_available())
    throw UserError(source + ": learner.device: cuda: no CUDA device is visible to this process");
  DeviceCollectives device;
  if (world.size() > 1) {
    device = choose_device_collectives(world);
    spdlog::info("rank {} on CUDA device {}; device statistics summed through {}", world.rank(),
                 device.device, device.kind);
  }
  try {
    const std::string type = config.learner["type"] ? config.learner["type"].as<std::string>() : "";
    if (type == "rls-head")
      return lm::cuda::make_rls_head_cuda_learner(config.learner, gpt, config.train.seed,
                                                  collectives_of(world), device.make);
    if (type == "kwm-ensemble")
      return lm::cuda::make_ensemble_cuda_learner(config.learner, gpt, config.train.seed,
                                                  collectives_of(world));
    if (type == "mezo")
      return lm::cuda::make_mezo_cuda_learner(config.learner, gpt, config.train.seed,
                                              collectives_of(world));
    if (type != "kwm-linearized")
      throw std::invalid_argument(
          "learner.device: cuda implements learner.type kwm-linearized, rls-head, kwm-ensemble "
          "and mezo; got '" +
          type + "'");
    return lm::cuda::make_kwm_linearized_cuda_learner(config.learner, gpt, config.train.seed,
                                                      collectives_of(world), device.make);
  } catch (const std::invalid_argument& e) {
    throw UserError(source + ": learner: " + e.what());
  }
#else
  (void)config, (void)gpt, (void)world;
  throw UserError(source +
                  ": learner.device: cuda needs a CUDA build of kwm (configure with "
                  "-DKWM_ENABLE_CUDA=ON where nvcc is installed)");
#endif
}

#ifdef KWM_HAVE_LM_CUDA
// Several ranks on CUDA (issue 7's bytes per step): the floats each rank's device all-reduces
// carry per step, for the learners that report them.
void log_device_all_reduce(const lm::LanguageLearner& learner) {
  std::size_t floats = 0;
  if (const auto* l = dynamic_cast<const lm::cuda::KwmLinearizedCudaLearner*>(&learner))
    floats = l->reduced_floats();
  else if (const auto* r = dynamic_cast<const lm::cuda::RlsHeadCudaLearner*>(&learner))
    floats = r->reduced_floats();
  else
    return;
  spdlog::info("device all-reduce payload per step: {} floats = {} bytes per rank", floats,
               floats * sizeof(float));
}

// Device memory in use on this rank's current GPU: cudaMemGetInfo's total - free, i.e. every
// allocation and context of every process on that GPU (one rank per GPU: this rank's).
double device_memory_in_use() {
  std::size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) != cudaSuccess) return 0.0;
  return static_cast<double>(total - free);
}
#endif

std::unique_ptr<lm::LanguageLearner> make_learner(const LmRunConfig& config,
                                                  const lm::GptConfig& gpt, Communicator& world,
                                                  const std::string& source) {
  if (config.learner_device == "cuda") return make_cuda_learner(config, gpt, world, source);
  try {
    return lm::make_language_learner(config.learner, gpt, config.train.seed, collectives_of(world));
  } catch (const std::invalid_argument& e) {
    throw UserError(source + ": learner: " + e.what());
  }
}

double bytes_per_token(const LmSplit& split) {
  return static_cast<double>(split.bytes) / static_cast<double>(split.tokens.size());
}

// train.eval_device (auto: the learner's device): true when validation and the test split are
// scored on the GPU. Checked before the run directory is written; refused like learner.device.
bool scores_on_cuda(const LmRunConfig& config, const std::string& source) {
  const std::string& device =
      config.train.eval_device == "auto" ? config.learner_device : config.train.eval_device;
  if (device != "cuda") return false;
#ifdef KWM_HAVE_LM_CUDA
  if (!lm::cuda::device_available())
    throw UserError(source +
                    ": train.eval_device: cuda: no CUDA device is visible to this process");
  return true;
#else
  throw UserError(source +
                  ": train.eval_device: cuda needs a CUDA build of kwm (configure with "
                  "-DKWM_ENABLE_CUDA=ON where nvcc is installed)");
#endif
}

}  // namespace

int run_lm_train(const LmTrainOptions& opt, Communicator& world) {
  const bool writer = world.rank() == 0;
  LmRunConfig config = parse_lm_run_config(opt.document, opt.config_path);
  if (!opt.run_dir.empty()) config.run_dir = opt.run_dir;
  if (!opt.resume && writer && std::filesystem::exists(config.run_dir / "checkpoints"))
    spdlog::warn(
        "{} holds checkpoints of an earlier run; without --resume they are kept and this "
        "run starts from scratch",
        config.run_dir.string());

  // Everything the config decides is checked before the run directory is touched: the GPT shape
  // and the learner are built for the vocabulary the tokenizer will have (byte: 256, bpe: its
  // vocab_size) and rebuilt in the unlikely case the trained tokenizer ends up with another.
  const int planned_vocab = config.data.tokenizer == "byte" ? 256 : config.data.bpe_vocab_size;
  lm::GptConfig gpt = gpt_config_of(config, planned_vocab, opt.config_path);
  const int length = config.train.length == 0 ? gpt.context : config.train.length;
  if (length > gpt.context)
    throw UserError(opt.config_path + ": train.length " + std::to_string(length) +
                    " exceeds model.context " + std::to_string(gpt.context));
  if (config.train.batch % world.size() != 0)
    throw UserError(opt.config_path + ": train.batch " + std::to_string(config.train.batch) +
                    " must be a multiple of the rank count " + std::to_string(world.size()));
  std::unique_ptr<lm::LanguageLearner> learner = make_learner(config, gpt, world, opt.config_path);
  const bool eval_on_cuda = scores_on_cuda(config, opt.config_path);

  LmData data = prepare_lm_data(world, config, opt.config_path);
  if (data.tokenizer->vocab_size() != gpt.vocab_size) {
    gpt = gpt_config_of(config, data.tokenizer->vocab_size(), opt.config_path);
    learner = make_learner(config, gpt, world, opt.config_path);
  }
  // Every rank holds the whole training split, so every rank shifts by the same vector; a resume
  // replaces it with the checkpoint's state.
  if (config.train.head_bias_init == "unigram") {
    try {
      learner->shift_head_bias(lm::unigram_log_prior(data.train.tokens, gpt.vocab_size));
    } catch (const std::invalid_argument& e) {
      throw UserError(opt.config_path + ": train.head_bias_init: " + e.what());
    }
  }

  text::LoaderOptions loader_options;
  loader_options.batch = config.train.batch;
  loader_options.length = length;
  loader_options.sampling =
      config.train.sampling == "random" ? text::Sampling::random : text::Sampling::sequential;
  loader_options.seed = config.train.seed;
  loader_options.rank = world.rank();
  loader_options.ranks = world.size();
  std::unique_ptr<text::TokenLoader> loader;
  try {
    loader = std::make_unique<text::TokenLoader>(data.train.tokens, loader_options,
                                                 (config.run_dir / "tokens/train.tokens").string());
  } catch (const std::invalid_argument& e) {
    throw UserError(opt.config_path + ": " + e.what());
  }

  const std::int64_t tokens_per_step = std::int64_t{config.train.batch} * length;
  const std::int64_t total_steps = std::max<std::int64_t>(1, config.train.tokens / tokens_per_step);
  const std::int64_t eval_every = config.train.eval_every > 0
                                      ? config.train.eval_every
                                      : std::max<std::int64_t>(1, total_steps / 20);

  YAML::Node resolved = YAML::Clone(config.root);
  resolved["model"] = lm::to_yaml(gpt);
  resolved["model"]["type"] = "gpt";
  resolved["train"]["run_dir"] = config.run_dir.string();
  resolved["train"]["length"] = length;
  resolved["train"]["eval_device"] = eval_on_cuda ? "cuda" : "cpu";
  const std::string config_yaml = YAML::Dump(resolved);

  // The unigram model of the training tokens: the floor every learner has to beat.
  const double unigram_nll =
      lm::unigram_nll(data.train.tokens, data.validation.tokens, gpt.vocab_size);
  spdlog::info(
      "run {}: GPT {} parameters (d {}, {} layers, {} heads, context {}, vocab {} {}), "
      "learner {}: {}",
      config.run_dir.string(), learner->parameters().size(), gpt.d_model, gpt.n_layers, gpt.n_heads,
      gpt.context, gpt.vocab_size, data.tokenizer->name(), learner->name(),
      learner->derivative_label());
  spdlog::info(
      "tokens: train {} / validation {} / test {}; {} steps of {} x {} tokens over {} "
      "rank(s); unigram validation loss {:.4f} nats",
      data.train.tokens.size(), data.validation.tokens.size(), data.test.tokens.size(), total_steps,
      config.train.batch, length, world.size(), unigram_nll);
#ifdef KWM_HAVE_LM_CUDA
  const bool on_cuda = config.learner_device == "cuda";
  if (on_cuda && world.size() > 1 && writer) log_device_all_reduce(*learner);
  double memory_peak = 0.0;  // the largest device_memory_in_use() after a step or the scoring
#endif

  LmCheckpointMeta progress;
  progress.config_yaml = config_yaml;
  progress.learner = learner->name();
  progress.tokenizer_fingerprint = data.tokenizer->fingerprint();
  if (opt.resume) {
    std::vector<std::string> skipped;
    progress = resume_lm_checkpoint(world, config.run_dir, *learner, skipped);
    for (const auto& line : skipped) spdlog::warn("checkpoint {}", line);
    if (progress.tokenizer_fingerprint != data.tokenizer->fingerprint())
      throw UserError(config.run_dir.string() + ": checkpoint tokenizer " +
                      progress.tokenizer_fingerprint + " differs from the run's " +
                      data.tokenizer->fingerprint());
    try {
      loader->restore(progress.cursor);
    } catch (const std::invalid_argument& e) {
      throw UserError(config.run_dir.string() + ": checkpoint data cursor: " + e.what());
    }
    progress.config_yaml = config_yaml;
    spdlog::info("resumed at step {} ({} tokens)", progress.step, progress.tokens);
  }

  std::ofstream metrics;
  if (writer) {
    ensure_directory(config.run_dir);
    write_file_atomically((config.run_dir / "config.yaml").string(), config_yaml + "\n");
    metrics.open(config.run_dir / "metrics.jsonl", std::ios::trunc);
    if (!metrics) throw UserError((config.run_dir / "metrics.jsonl").string() + ": cannot write");
    metrics << progress.metrics_jsonl << std::flush;
  }
  const auto log = [&](const nlohmann::json& line) {
    const std::string text = line.dump() + "\n";
    progress.metrics_jsonl += text;
    if (writer) metrics << text << std::flush;
  };
#ifdef KWM_HAVE_LM_CUDA
  DeviceScorer device_scorer;  // builds its forward pass at the first score, on the learner's GPU
#endif
  const auto score = [&](const LmSplit& split, std::int64_t max_tokens) {
#ifdef KWM_HAVE_LM_CUDA
    if (eval_on_cuda)
      return device_scorer.score(world, learner->parameters(), split.tokens, length, max_tokens,
                                 bytes_per_token(split));
#endif
    return score_tokens(world, learner->parameters(), split.tokens, length, max_tokens,
                        bytes_per_token(split));
  };
  const auto validate = [&]() { return score(data.validation, config.train.eval_tokens); };

  std::optional<LmScore> final_validation;  // the score after the last step, once computed
  const bool checkpointing = config.train.checkpoint_every > 0 || opt.resume;
  if (checkpointing) {
    std::signal(SIGTERM, request_lm_checkpoint_and_stop);
    std::signal(SIGUSR1, request_lm_checkpoint_and_stop);
  }
  if (progress.step == 0) {
    const LmScore v = validate();
    log({{"step", 0},
         {"tokens", 0},
         {"wall_s", 0.0},
         {"val_nll", v.nll},
         {"val_bpb", v.bits_per_byte},
         {"unigram_nll", unigram_nll}});
  }
  const auto started = std::chrono::steady_clock::now();
  const double wall_before = progress.wall_seconds;
  const auto wall = [&] {
    return wall_before +
           std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  // The window and counters live in `progress`: a checkpoint carries them, so a resumed run logs
  // exactly the lines of an uninterrupted one.
  double& window_nll = progress.window_nll;
  double& window_tokens = progress.window_tokens;
  std::int64_t& skipped_updates = progress.skipped_updates;
  std::int64_t& forward_passes = progress.forward_passes;
  std::int64_t& tj_passes = progress.transposed_jacobian_passes;
  while (progress.step < total_steps) {
    const lm::TokenBatch batch = loader->next();
    const lm::StepReport report = learner->step(batch);
#ifdef KWM_HAVE_LM_CUDA
    if (on_cuda) memory_peak = std::max(memory_peak, device_memory_in_use());
#endif
    // Loss over every rank's share, measured before the update (prequential).
    double sums[5] = {report.nll_before * static_cast<double>(report.tokens),
                      static_cast<double>(report.tokens), report.skipped ? 1.0 : 0.0,
                      static_cast<double>(report.forward_passes),
                      static_cast<double>(report.transposed_jacobian_passes)};
    world.all_reduce_sum(sums, 5);
    if (!std::isfinite(sums[0]))
      throw UserError("step " + std::to_string(progress.step + 1) +
                      ": the training loss is not finite (NaN/Inf in the model or data)");
    ++progress.step;
    progress.tokens += static_cast<std::int64_t>(sums[1]);
    progress.train_nll_sum += sums[0];
    window_nll += sums[0];
    window_tokens += sums[1];
    skipped_updates += static_cast<std::int64_t>(sums[2]);
    forward_passes += static_cast<std::int64_t>(sums[3]);
    tj_passes += static_cast<std::int64_t>(sums[4]);
    progress.cursor = loader->cursor();

    if (progress.step % eval_every == 0 || progress.step == total_steps) {
      const LmScore v = validate();
      final_validation = v;
      log({{"step", progress.step},
           {"tokens", progress.tokens},
           {"wall_s", wall()},
           {"train_nll", window_nll / window_tokens},
           {"val_nll", v.nll},
           {"val_bpb", v.bits_per_byte},
           {"skipped", skipped_updates},
           {"forward_passes", forward_passes},
           {"transposed_jacobian_passes", tj_passes}});
      if (!opt.quiet)
        spdlog::info(
            "step {}/{}: {} tokens, train {:.4f}, validation {:.4f} nats ({:.3f} bits/byte)",
            progress.step, total_steps, progress.tokens, window_nll / window_tokens, v.nll,
            v.bits_per_byte);
      window_nll = window_tokens = 0.0;
    }
    const bool stop = checkpointing && world.all_reduce_any(g_lm_stop != 0);
    const bool due =
        config.train.checkpoint_every > 0 && progress.step % config.train.checkpoint_every == 0;
    if (stop || (due && progress.step < total_steps)) {
      progress.wall_seconds = wall();
      const auto dir =
          write_lm_checkpoint(world, config.run_dir, progress, *learner, config.train.keep_last);
      spdlog::info("checkpoint {}", dir.string());
      if (stop) {
        spdlog::info("stopping on a signal after the checkpoint; resume with --resume");
        return 0;
      }
    }
  }

  const LmScore test =
      score(data.test.tokens.size() >= 2 ? data.test : data.validation, config.train.test_tokens);
  // The last step was validated in the loop; only a resume past the end needs a fresh score.
  const LmScore val = final_validation ? *final_validation : validate();
  if (writer) {
    save_lm_model(config.run_dir / "model.h5",
                  {learner->parameters(), data.tokenizer->fingerprint(), learner->name()});
  }
#ifdef KWM_HAVE_LM_CUDA
  if (on_cuda) {  // every rank's peak, logged once
    memory_peak = std::max(memory_peak, device_memory_in_use());
    std::vector<double> peaks(static_cast<std::size_t>(world.size()));
    world.all_gather(&memory_peak, 1, peaks.data());
    std::string by_rank;
    for (const double bytes : peaks) by_rank += fmt::format(" {:.1f}", bytes / (1024.0 * 1024.0));
    if (writer)
      spdlog::info(
          "device memory in use (cudaMemGetInfo total - free, largest after a step or the final "
          "scoring), MiB by rank:{}",
          by_rank);
  }
#endif
  world.barrier();
  nlohmann::json result = {
      {"command", "train"},
      {"run_dir", config.run_dir.string()},
      {"learner", learner->name()},
      {"derivatives", learner->derivative_label()},
      {"parameters", learner->parameters().size()},
      {"tokenizer", data.tokenizer->name()},
      {"steps", progress.step},
      {"tokens", progress.tokens},
      {"ranks", world.size()},
      {"wall_s", wall()},
      {"train_nll_prequential", progress.train_nll_sum / std::max<double>(1.0, progress.tokens)},
      {"unigram_nll", unigram_nll},
      {"val_nll", val.nll},
      {"val_bpb", val.bits_per_byte},
      {"test_nll", test.nll},
      {"test_bpb", test.bits_per_byte},
      {"test_perplexity", test.perplexity},
      {"skipped_updates", skipped_updates}};
  if (writer)
    print_result(
        opt.output, result,
        fmt::format("trained {} ({}) on {} tokens in {:.1f} s: validation {:.4f} nats, "
                    "test {:.4f} nats = {:.3f} bits/byte (unigram {:.4f}); run dir {}\n",
                    learner->name(), learner->derivative_label(), progress.tokens, wall(), val.nll,
                    test.nll, test.bits_per_byte, unigram_nll, config.run_dir.string()));
  return 0;
}

}  // namespace kwm::launch
