// Deterministic, resumable, rank-sharded batches.
#include "core/text/token_loader.hpp"

#include <yaml-cpp/yaml.h>

#include <stdexcept>

namespace kwm::text {
namespace {

// SplitMix64's finaliser: the k-th random offset is a pure function of (seed, k), so restoring
// a cursor needs only the count of draws, not a generator state.
std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t counter_random(std::uint64_t seed, std::uint64_t k) {
  return mix64(mix64(seed) + (k + 1) * 0x9e3779b97f4a7c15ULL);
}

int positive_int(const YAML::Node& node, const std::string& key) {
  int value = 0;
  try {
    value = node.as<int>();
  } catch (const YAML::Exception&) {
    throw std::invalid_argument("config key " + key + " must be a positive integer");
  }
  if (value <= 0) {
    throw std::invalid_argument("config key " + key + " must be positive; got " +
                                std::to_string(value));
  }
  return value;
}

}  // namespace

LoaderOptions parse_loader_options(const YAML::Node& loader) {
  LoaderOptions options;
  if (!loader || loader.IsNull()) return options;
  if (!loader.IsMap()) throw std::invalid_argument("config key loader must be a map");
  for (const auto& entry : loader) {
    const auto key = entry.first.as<std::string>();
    if (key == "batch") {
      options.batch = positive_int(entry.second, "loader.batch");
    } else if (key == "length") {
      options.length = positive_int(entry.second, "loader.length");
    } else if (key == "seed") {
      try {
        options.seed = entry.second.as<std::uint64_t>();
      } catch (const YAML::Exception&) {
        throw std::invalid_argument("config key loader.seed must be a non-negative integer");
      }
    } else if (key == "sampling") {
      const auto mode = entry.second.as<std::string>();
      if (mode == "sequential") {
        options.sampling = Sampling::sequential;
      } else if (mode == "random") {
        options.sampling = Sampling::random;
      } else {
        throw std::invalid_argument(
            "config key loader.sampling must be sequential or random; got '" + mode + "'");
      }
    } else {
      throw std::invalid_argument("unknown config key loader." + key +
                                  " (known: batch, length, sampling, seed)");
    }
  }
  return options;
}

TokenLoader::TokenLoader(std::vector<std::int32_t> tokens, const LoaderOptions& options,
                         const std::string& source)
    : tokens_(std::move(tokens)), options_(options), source_(source) {
  if (options_.batch <= 0 || options_.length <= 0) {
    throw std::invalid_argument(source_ + ": loader batch and length must be positive");
  }
  if (options_.ranks <= 0 || options_.rank < 0 || options_.rank >= options_.ranks) {
    throw std::invalid_argument(source_ + ": loader rank " + std::to_string(options_.rank) +
                                " is outside [0, " + std::to_string(options_.ranks) + ")");
  }
  if (options_.batch % options_.ranks != 0) {
    throw std::invalid_argument(source_ + ": the global batch " + std::to_string(options_.batch) +
                                " is not divisible by the " + std::to_string(options_.ranks) +
                                " ranks");
  }
  const auto n = static_cast<std::int64_t>(tokens_.size());
  windows_ = n > 0 ? (n - 1) / options_.length : 0;
  if (windows_ < options_.batch) {
    throw std::invalid_argument(
        source_ + ": " + std::to_string(n) + " tokens make " + std::to_string(windows_) +
        " windows of " + std::to_string(options_.length) + "+1 tokens, fewer than the batch of " +
        std::to_string(options_.batch));
  }
}

std::size_t TokenLoader::window_start(std::int64_t row) const {
  if (options_.sampling == Sampling::sequential) {
    return static_cast<std::size_t>((cursor_.position + row) * options_.length);
  }
  // Starts in [0, N-T-1]; the modulo bias is below (N / 2^64), far under any measurable effect.
  const std::uint64_t starts = tokens_.size() - static_cast<std::size_t>(options_.length);
  return static_cast<std::size_t>(
      counter_random(options_.seed, cursor_.draws + static_cast<std::uint64_t>(row)) % starts);
}

lm::TokenBatch TokenLoader::next() {
  if (cursor_.position + options_.batch > windows_) {
    ++cursor_.epoch;
    cursor_.position = 0;
  }
  lm::TokenBatch batch;
  batch.batch = local_batch();
  batch.length = options_.length;
  const auto length = static_cast<std::size_t>(options_.length);
  batch.inputs.resize(static_cast<std::size_t>(batch.batch) * length);
  batch.targets.resize(batch.inputs.size());
  const std::int64_t first_row = static_cast<std::int64_t>(options_.rank) * batch.batch;
  for (int b = 0; b < batch.batch; ++b) {
    const std::size_t start = window_start(first_row + b);
    const std::size_t row = static_cast<std::size_t>(b) * length;
    for (std::size_t t = 0; t < length; ++t) {
      batch.inputs[row + t] = tokens_[start + t];
      batch.targets[row + t] = tokens_[start + t + 1];
    }
  }
  cursor_.position += options_.batch;
  if (options_.sampling == Sampling::random) {
    cursor_.draws += static_cast<std::uint64_t>(options_.batch);
  }
  return batch;
}

void TokenLoader::restore(const LoaderCursor& cursor) {
  if (cursor.epoch < 0 || cursor.position < 0 || cursor.position > windows_) {
    throw std::invalid_argument(source_ + ": loader cursor (epoch " + std::to_string(cursor.epoch) +
                                ", position " + std::to_string(cursor.position) +
                                ") does not fit this stream of " + std::to_string(windows_) +
                                " windows");
  }
  if (options_.sampling == Sampling::sequential && cursor.draws != 0) {
    throw std::invalid_argument(source_ +
                                ": loader cursor has random draws but sampling is sequential");
  }
  cursor_ = cursor;
}

}  // namespace kwm::text
