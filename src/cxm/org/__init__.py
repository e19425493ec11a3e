"""Organization: company, departments, teams, touchpoints, and who owns each touchpoint."""
