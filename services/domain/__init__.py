"""The vocabulary: enums, frozen records and errors. Imports nothing else of lrlab's."""
