"""The knowledge base: article files (zh + en) shipped with the package, and the code that loads them."""
