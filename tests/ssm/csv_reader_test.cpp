// The CSV reader: selection by name, missing cells, and the messages users see.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/data/csv_reader.hpp"

namespace kwm::data {
namespace {

class CsvReader : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  std::string error_of(const std::string& path, const std::vector<std::string>& cols = {}) {
    try {
      read_csv(path, cols);
    } catch (const DataError& e) {
      return e.what();
    }
    return "no error";
  }
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kwm_csv_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(CsvReader, SelectsColumnsByNameInRequestedOrder) {
  const auto path = write("d.csv", "\"date\",\"a\",\"b\"\n1958-03-29,1.5,2\r\nx,  -3e2 ,+4\n");
  const NumericTable t = read_csv(path, {"b", "a"});
  ASSERT_EQ(t.values.rows(), 2);
  ASSERT_EQ(t.values.cols(), 2);
  EXPECT_EQ(t.columns, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(t.values(0, 0), 2.0);
  EXPECT_EQ(t.values(0, 1), 1.5);
  EXPECT_EQ(t.values(1, 1), -300.0);
  EXPECT_EQ(t.values(1, 0), 4.0);
  EXPECT_EQ(t.lines, (std::vector<std::size_t>{2, 3}));
  EXPECT_EQ(read_csv_header(path), (std::vector<std::string>{"date", "a", "b"}));
}

TEST_F(CsvReader, EmptyNaAndNanCellsAreMissing) {
  const auto path = write("d.csv", "year,volume\n1,\n2,NA\n3,NaN\n4,nan\n5,\"\"\n6,7\n");
  const NumericTable t = read_csv(path);
  ASSERT_EQ(t.values.rows(), 6);
  for (Eigen::Index i = 0; i < 5; ++i) EXPECT_TRUE(std::isnan(t.values(i, 1))) << i;
  EXPECT_EQ(t.values(5, 1), 7.0);
}

TEST_F(CsvReader, BlankLineInOneColumnFileIsAMissingStep) {
  // 10 data lines, the second one empty: 10 steps, not 9; trailing blank lines are not data.
  const auto path = write("y.csv", "y\n1\n\n3\n4\n5\n6\n7\n8\n9\n10\n\n\n");
  const NumericTable t = read_csv(path);
  ASSERT_EQ(t.values.rows(), 10);
  EXPECT_TRUE(std::isnan(t.values(1, 0)));
  EXPECT_EQ(t.values(2, 0), 3.0);
  EXPECT_EQ(t.lines[1], 3u);
}

TEST_F(CsvReader, BlankLineInManyColumnFileIsAnError) {
  const auto path = write("d.csv", "a,b\n1,2\n\n3,4\n");
  EXPECT_EQ(error_of(path), path +
                                " line 3: blank line in a file of 2 columns (write a missing row "
                                "as empty fields separated by commas)");
}

TEST_F(CsvReader, UnparsableNumberNamesLineAndColumn) {
  std::string text = "year,volume\n";
  for (int i = 0; i < 15; ++i) text += "1,2\n";
  text += "1871,abc\n";
  const auto path = write("data.csv", text);
  EXPECT_EQ(error_of(path), path + " line 17 column 'volume': cannot parse 'abc' as a number");
  // An unselected column is never parsed.
  EXPECT_EQ(read_csv(path, {"year"}).values.rows(), 16);
}

TEST_F(CsvReader, MissingColumnListsTheColumns) {
  const auto path = write("data.csv", "year,volume\n1,2\n");
  EXPECT_EQ(error_of(path, {"foo"}),
            "column 'foo' not found in " + path + "; columns are: year, volume");
}

TEST_F(CsvReader, MissingFile) {
  const auto path = (dir_ / "absent.csv").string();
  EXPECT_EQ(error_of(path), "data file " + path + " not found");
}

TEST_F(CsvReader, RaggedRowAndEmptyFile) {
  const auto ragged = write("r.csv", "a,b\n1,2\n3\n");
  EXPECT_EQ(error_of(ragged), ragged + " line 3: expected 2 fields (as in the header), found 1");
  const auto empty = write("e.csv", "");
  EXPECT_EQ(error_of(empty), empty + " line 1: expected a header row of column names");
}

}  // namespace
}  // namespace kwm::data
