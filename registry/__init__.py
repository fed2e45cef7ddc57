"""The National Registration Database: organisations, contact points, cooperation protocols."""
