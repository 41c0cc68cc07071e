// CSV parsing for numeric time series (RFC 4180 quoting, CRLF tolerated, no embedded newlines).
#include "core/data/csv_reader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace kwm::data {

namespace {

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return std::string(s.substr(first, last - first + 1));
}

// Splits one line into fields; a quoted field may hold commas and doubled quotes.
std::vector<std::string> split_fields(const std::string& line, const std::string& path,
                                      std::size_t line_no) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  bool was_quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"' && trim(field).empty()) {
      quoted = true;
      was_quoted = true;
      field.clear();
    } else if (c == ',') {
      fields.push_back(was_quoted ? field : trim(field));
      field.clear();
      was_quoted = false;
    } else {
      field += c;
    }
  }
  if (quoted) throw DataError(fmt::format("{} line {}: unterminated quoted field", path, line_no));
  fields.push_back(was_quoted ? field : trim(field));
  return fields;
}

bool is_missing(const std::string& cell) {
  std::string lower = cell;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return lower.empty() || lower == "na" || lower == "nan";
}

double parse_number(const std::string& cell, const std::string& path, std::size_t line_no,
                    const std::string& column) {
  if (is_missing(cell)) return std::numeric_limits<double>::quiet_NaN();
  const char* begin = cell.data();
  const char* end = begin + cell.size();
  if (begin != end && *begin == '+') ++begin;
  double value = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end) {
    throw DataError(fmt::format("{} line {} column '{}': cannot parse '{}' as a number", path,
                                line_no, column, cell));
  }
  return value;
}

std::ifstream open(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw DataError(fmt::format("data file {} not found", path));
  }
  std::ifstream in(path);
  if (!in) throw DataError(fmt::format("data file {} cannot be opened for reading", path));
  return in;
}

std::vector<std::string> header_of(std::ifstream& in, const std::string& path) {
  std::string line;
  if (!std::getline(in, line) || trim(line).empty()) {
    throw DataError(fmt::format("{} line 1: expected a header row of column names", path));
  }
  if (line.size() >= 3 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // BOM
  return split_fields(line, path, 1);
}

}  // namespace

std::vector<std::string> read_csv_header(const std::string& path) {
  auto in = open(path);
  return header_of(in, path);
}

NumericTable read_csv(const std::string& path, const std::vector<std::string>& columns) {
  auto in = open(path);
  const std::vector<std::string> header = header_of(in, path);

  NumericTable table;
  table.source = path;
  table.columns = columns.empty() ? header : columns;
  std::vector<std::size_t> index;
  for (const auto& name : table.columns) {
    const auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end()) {
      throw DataError(fmt::format("column '{}' not found in {}; columns are: {}", name, path,
                                  fmt::join(header, ", ")));
    }
    index.push_back(static_cast<std::size_t>(it - header.begin()));
  }

  std::vector<std::vector<double>> rows;
  std::string line;
  std::size_t line_no = 1;
  // A blank line inside a one-column file is that column's empty cell: a missing value, which
  // must keep its time step. Blank lines at the end of the file are not data. In a file of
  // several columns a blank line is ambiguous (a missing row is written as ",,"), so it is an
  // error rather than a silently dropped step.
  std::vector<std::size_t> pending_blank_lines;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) {
      pending_blank_lines.push_back(line_no);
      continue;
    }
    for (const std::size_t blank : pending_blank_lines) {
      if (header.size() != 1) {
        throw DataError(fmt::format(
            "{} line {}: blank line in a file of {} columns (write a missing row as empty "
            "fields separated by commas)",
            path, blank, header.size()));
      }
      rows.emplace_back(index.size(), std::numeric_limits<double>::quiet_NaN());
      table.lines.push_back(blank);
    }
    pending_blank_lines.clear();
    const auto fields = split_fields(line, path, line_no);
    if (fields.size() != header.size()) {
      throw DataError(fmt::format("{} line {}: expected {} fields (as in the header), found {}",
                                  path, line_no, header.size(), fields.size()));
    }
    std::vector<double> row;
    row.reserve(index.size());
    for (std::size_t j = 0; j < index.size(); ++j) {
      row.push_back(parse_number(fields[index[j]], path, line_no, table.columns[j]));
    }
    rows.push_back(std::move(row));
    table.lines.push_back(line_no);
  }
  if (in.bad()) throw DataError(fmt::format("{}: read error", path));

  table.values.resize(static_cast<Eigen::Index>(rows.size()),
                      static_cast<Eigen::Index>(index.size()));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    for (std::size_t j = 0; j < index.size(); ++j) {
      table.values(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = rows[i][j];
    }
  }
  return table;
}

}  // namespace kwm::data
