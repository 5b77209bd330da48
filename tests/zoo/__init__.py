"""The zoo: destinations that break one clause each (broken), and correct-but-unusual ones (unusual)."""
