"""The book's pages and figures: HTML for the lecture pages and chapters, the claims' panels,
the experiments' figures and the lectures' own figures, rendered from what the book computed."""
