// Numeric time series from a CSV file: a header row of column names, one row per time step.
// Empty, NA and NaN cells read as NaN (a missing observation). Errors name the file, the line
// and the column.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Dense>

namespace kwm::data {

// A malformed or unreadable data file; the message is meant for the user as is.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct NumericTable {
  std::string source;                // the path it was read from
  std::vector<std::string> columns;  // the selected column names, in the order requested
  Eigen::MatrixXd values;            // rows = time steps, one column per selected name
  std::vector<std::size_t> lines;    // the file line of each row (1-based; header is line 1)
};

// The column names in the header of `path`.
std::vector<std::string> read_csv_header(const std::string& path);

// Reads the named columns (all columns when `columns` is empty) of `path`. Only the selected
// columns are parsed, so text columns (dates) elsewhere in the file do no harm.
// Throws DataError: missing file, unknown column, ragged row, unparsable number.
NumericTable read_csv(const std::string& path, const std::vector<std::string>& columns = {});

}  // namespace kwm::data
