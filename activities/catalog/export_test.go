package catalog

// QSearch is the search statement, for the test that reads its plan.
const QSearch = qSearch
