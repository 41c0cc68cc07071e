// Project Gutenberg boilerplate: the licence header and footer around the book itself.
#pragma once

#include <string>
#include <string_view>

namespace kwm::text {

// Keeps what lies strictly between the line that starts with "*** START OF" and the line that
// starts with "*** END OF" (blank lines at either end are dropped). A missing START keeps from
// the beginning, a missing END keeps to the end, so a file without markers is kept whole.
// Expects LF line endings (normalise_line_endings first).
std::string strip_gutenberg(std::string_view text);

}  // namespace kwm::text
