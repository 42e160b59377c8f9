# cmake -DIN=file -DOUT=file.cpp -DNAME=symbol -P EmbedText.cmake
# Writes `extern const char NAME[] = R"...";` so a text file ships inside the binary.
file(READ ${IN} content)
set(delim "consilium_embed")
file(WRITE ${OUT} "// Generated from ${IN}; do not edit.\nextern const char ${NAME}[];\nconst char ${NAME}[] = R\"${delim}(${content})${delim}\";\n")
