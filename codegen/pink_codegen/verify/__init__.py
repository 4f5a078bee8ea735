"""`pink-codegen verify`: exhaustive model checking of the composed slot model within bounds."""
