"""The risk service's one page: a council's transparency record, as HTML."""
