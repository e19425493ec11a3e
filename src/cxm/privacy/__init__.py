"""Privacy requests that span every domain: erasing one person everywhere."""
