//! Name and label validation as upstream (DNS-1123 labels and subdomains, qualified names, label values).
