// OSIS XML (the King James Bible of bibledit-data) to plain text.
#pragma once

#include <string>
#include <string_view>

namespace kwm::text {

// Drops every tag, the contents of <note> (translators' notes) and <header> (metadata), decodes
// the five XML entities and numeric character references, trims each line, collapses runs of
// spaces and drops empty lines. The KJV comes out one verse per line, titles on their own lines.
// Throws std::invalid_argument naming `source` on a document without an <osis> element, an
// unterminated tag, an unbalanced <note> or an unknown entity.
std::string osis_to_text(std::string_view xml, const std::string& source);

}  // namespace kwm::text
