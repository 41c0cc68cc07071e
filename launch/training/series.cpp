// CSV -> Series, including the wide layout (rows of consecutive steps) used by elnino.
#include "launch/training/series.hpp"

#include "core/data/csv_reader.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {

Series load_series(const DataConfig& config) {
  try {
    Series s;
    s.source = config.path;
    const data::NumericTable outputs = data::read_csv(config.path, config.columns);
    if (config.layout == "wide") {
      // Row-major flatten: row r, column c is step r * k + c.
      const Eigen::Index rows = outputs.values.rows(), k = outputs.values.cols();
      s.outputs.resize(rows * k, 1);
      for (Eigen::Index r = 0; r < rows; ++r)
        for (Eigen::Index c = 0; c < k; ++c) s.outputs(r * k + c, 0) = outputs.values(r, c);
      s.channels = {"value"};
      s.inputs.resize(s.outputs.rows(), 0);
      return s;
    }
    s.outputs = outputs.values;
    s.channels = outputs.columns;
    if (config.inputs.empty()) {
      s.inputs.resize(s.outputs.rows(), 0);
    } else {
      const data::NumericTable inputs = data::read_csv(config.path, config.inputs);
      for (Eigen::Index r = 0; r < inputs.values.rows(); ++r)
        for (Eigen::Index c = 0; c < inputs.values.cols(); ++c)
          if (!std::isfinite(inputs.values(r, c)))
            throw UserError(config.path + " line " + std::to_string(inputs.lines[std::size_t(r)]) +
                            ": input column '" + inputs.columns[std::size_t(c)] +
                            "' is missing or not finite (inputs must be complete)");
      s.inputs = inputs.values;
    }
    return s;
  } catch (const data::DataError& e) {
    throw UserError(e.what());
  }
}

}  // namespace kwm::launch
