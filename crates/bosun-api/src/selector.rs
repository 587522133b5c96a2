//! Label and field selectors: parsing the string forms, converting LabelSelector, matching.
