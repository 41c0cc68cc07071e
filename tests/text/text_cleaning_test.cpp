// Gutenberg header/footer stripping, OSIS to text, line endings, and refusing bad files.
#include <gtest/gtest.h>
#include <unistd.h>

#include "core/text/gutenberg.hpp"
#include "core/text/osis.hpp"
#include "core/text/text_file.hpp"
#include "tests/text/text_test_support.hpp"

namespace kwm::text {
namespace {

using testing::ScratchDir;
using testing::write_file;

TEST(Gutenberg, KeepsOnlyWhatLiesBetweenTheMarkers) {
  const std::string sample =
      "The Project Gutenberg EBook of Tiny, by Nobody\n"
      "This eBook is for the use of anyone anywhere at no cost\n"
      "*** START OF THIS PROJECT GUTENBERG EBOOK TINY ***\n"
      "\n"
      "\n"
      "CHAPTER 1. Call me Tiny.\n"
      "\n"
      "It was a dark night.\n"
      "\n"
      "*** END OF THIS PROJECT GUTENBERG EBOOK TINY ***\n"
      "Updated editions will replace the previous one.\n";
  EXPECT_EQ(strip_gutenberg(sample), "CHAPTER 1. Call me Tiny.\n\nIt was a dark night.\n");
}

TEST(Gutenberg, NewerMarkerWordingAndMissingEndMarker) {
  const std::string sample =
      "licence\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\nbody line\nlast line";
  EXPECT_EQ(strip_gutenberg(sample), "body line\nlast line\n");
}

TEST(Gutenberg, FileWithoutMarkersIsKeptWhole) {
  const std::string sample = "Produced by someone.\n\nTHE BOOK\n\nIt begins.\n";
  EXPECT_EQ(strip_gutenberg(sample), sample);
}

TEST(Gutenberg, MarkerInsideALineIsNotAMarker) {
  const std::string sample = "He said *** START OF nothing.\nMore.\n";
  EXPECT_EQ(strip_gutenberg(sample), sample);
}

TEST(LineEndings, CrlfAndLoneCrBecomeLfAndTheBomGoes) {
  EXPECT_EQ(normalise_line_endings("\xEF\xBB\xBFone\r\ntwo\rthree\n"), "one\ntwo\nthree\n");
}

TEST(Osis, StripsTagsNotesAndHeaderAndDecodesEntities) {
  const std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<osis xmlns=\"http://www.bibletechnologies.net/2003/OSIS/namespace\">\n"
      "<osisText osisIDWork=\"KJV\">\n"
      "<header><work osisWork=\"KJV\"><title>King James Version</title></work></header>\n"
      "<div type=\"book\" osisID=\"Gen\">\n"
      "<title type=\"main\">THE FIRST BOOK OF MOSES</title>\n"
      "<chapter osisID=\"Gen.1\">\n"
      "<verse osisID=\"Gen.1.1\" sID=\"Gen.1.1\"/><w lemma=\"strong:H07225\">In the "
      "beginning</w> <w lemma=\"strong:H0430\">God</w> <w>created</w>.<verse eID=\"Gen.1.1\"/>\n"
      "<verse sID=\"Gen.1.4\"/><w>And God</w> <w>saw</w> <transChange "
      "type=\"added\">it was</transChange> <w>good</w>: <note type=\"study\">the light "
      "from&#8230;: Heb. <divineName>between</divineName></note><verse eID=\"Gen.1.4\"/>\n"
      "<verse sID=\"Ps.1\"/><milestone type=\"x-p\" marker=\"&#182;\"/>Salt &amp; light "
      "&lt;&gt; &#x41;&#65;\n"
      "</chapter></div></osisText></osis>\n";
  EXPECT_EQ(osis_to_text(xml, "sample.xml"),
            "THE FIRST BOOK OF MOSES\n"
            "In the beginning God created.\n"
            "And God saw it was good:\n"
            "Salt & light <> AA\n");
}

TEST(Osis, MalformedDocumentsAreRefusedByName) {
  KWM_EXPECT_THROW_WITH(osis_to_text("plain text", "a.xml"), std::invalid_argument,
                        "a.xml: not an OSIS document");
  KWM_EXPECT_THROW_WITH(osis_to_text("<osis><w>word</w", "b.xml"), std::invalid_argument,
                        "b.xml: unterminated tag");
  KWM_EXPECT_THROW_WITH(osis_to_text("<osis><note>never closed</osis>", "c.xml"),
                        std::invalid_argument, "c.xml: a <note> or <header> element");
  KWM_EXPECT_THROW_WITH(osis_to_text("<osis>&nbsp;</osis>", "d.xml"), std::invalid_argument,
                        "d.xml: unknown XML entity &nbsp;");
}

TEST(TextFile, MissingEmptyAndBinaryFilesAreNamed) {
  ScratchDir dir;
  KWM_EXPECT_THROW_WITH(read_text_file(dir / "absent.txt"), std::runtime_error, "absent.txt");
  write_file(dir / "empty.txt", "");
  KWM_EXPECT_THROW_WITH(read_text_file(dir / "empty.txt"), std::invalid_argument,
                        "empty.txt: empty text file");
  write_file(dir / "nul.txt", std::string("text\0more", 9));
  KWM_EXPECT_THROW_WITH(read_text_file(dir / "nul.txt"), std::invalid_argument,
                        "nul.txt: binary file (NUL byte at offset 4)");
  std::string latin1_noise;
  for (int i = 0; i < 200; ++i) latin1_noise += (i % 3 == 0) ? "\xE9\xFF" : "ab";
  write_file(dir / "noise.bin", latin1_noise);
  KWM_EXPECT_THROW_WITH(read_text_file(dir / "noise.bin"), std::invalid_argument,
                        "noise.bin: binary file, not text");
}

TEST(TextFile, ValidUtf8AndRareControlCharactersPass) {
  ScratchDir dir;
  std::string text = "Caf\xC3\xA9 \xE2\x80\x94 \xF0\x9F\x93\x96 with\ttabs\n";
  for (int i = 0; i < 10; ++i) text += "A long, ordinary line of prose for the ratio.\n";
  text += "over\bstrike\n";  // one backspace, as in the fortunes literature file
  write_file(dir / "ok.txt", text);
  EXPECT_EQ(read_text_file(dir / "ok.txt"), text);
}

TEST(TextFile, OverlongAndSurrogateEncodingsCountAsInvalid) {
  // Two bytes each, every one invalid: far over the 1% allowance.
  EXPECT_THROW(check_plain_text(std::string(50, 'a') + "\xC0\xAF\xED\xA0\x80", "s"),
               std::invalid_argument);
}

}  // namespace
}  // namespace kwm::text
