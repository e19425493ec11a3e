"""Organization: company, departments, teams, touchpoints and who owns which part of the experience."""
