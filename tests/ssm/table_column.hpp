// One named column's value at a row of a CSV table, for the KFAS golden tests.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

#include "core/data/csv_reader.hpp"

namespace kwm::test {

inline double column_value(const data::NumericTable& t, const std::string& name, Eigen::Index row) {
  for (std::size_t j = 0; j < t.columns.size(); ++j) {
    if (t.columns[j] == name) return t.values(row, static_cast<Eigen::Index>(j));
  }
  throw std::runtime_error("no column " + name);
}

}  // namespace kwm::test
